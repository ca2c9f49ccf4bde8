/** HL7 v2 test messages as a lab or monitor would send them: ORU^R01 results of 1–2 KB, ADT^A01 admissions. */

export interface OruOptions {
  controlId: string;
  /** Observations (OBX segments); 12–24 make a 1–2 KB message. */
  observations?: number;
  /** MSH-18, e.g. `8859/1`; the body is then encoded in it by the caller. */
  charset?: string;
  patientName?: string;
  sendingFacility?: string;
}

const TESTS = [
  ['2345-7', 'Glucose', 'mg/dL', '70-99'],
  ['2951-2', 'Sodium', 'mmol/L', '136-145'],
  ['2823-3', 'Potassium', 'mmol/L', '3.5-5.1'],
  ['718-7', 'Hemoglobin', 'g/dL', '12.0-17.5'],
  ['6690-2', 'Leukocytes', '10*3/uL', '4.5-11.0'],
  ['777-3', 'Platelets', '10*3/uL', '150-400'],
] as const;

/** A deterministic pseudo-random value per message and observation (noisy, as real results are). */
function value(seed: string, i: number): string {
  let h = 2166136261;
  for (const c of `${seed}:${i}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return (((h >>> 0) / 2 ** 32) * 150 + 3).toFixed(2);
}

export function oruMessage(o: OruOptions): string {
  const n = o.observations ?? 16;
  const msh = `MSH|^~\\&|LABSYS|${o.sendingFacility ?? 'NORTH-LAB'}|EDGE|WARD-7|20261206101500||ORU^R01^ORU_R01|${o.controlId}|P|2.5.1${o.charset ? `||||||${o.charset}` : ''}`;
  const segments = [
    msh,
    `PID|1||MRN${o.controlId.slice(-6)}^^^HOSP^MR~${o.controlId.slice(-4)}^^^NAT^SS||${o.patientName ?? 'Doe^Jane^Q'}||19700101|F`,
    'PV1|1|I|WARD-7^12^B',
    `OBR|1|PL${o.controlId}|FL${o.controlId}|24323-8^Comprehensive metabolic panel^LN|||20261206100000`,
  ];
  for (let i = 0; i < n; i++) {
    const [code, name, unit, range] = TESTS[i % TESTS.length]!;
    segments.push(`OBX|${i + 1}|NM|${code}^${name}^LN||${value(o.controlId, i)}|${unit}|${range}|N|||F|||20261206100${i % 10}00`);
  }
  segments.push('NTE|1||Specimen received in good condition \\T\\ processed within 2 hours.');
  return `${segments.join('\r')}\r`;
}

export function adtMessage(controlId: string): string {
  return (
    [
      `MSH|^~\\&|ADT|GENERAL|EDGE|WARD-7|20261206101500||ADT^A01^ADT_A01|${controlId}|P|2.5`,
      'EVN|A01|20261206101400',
      'PID|1||MRN778^^^HOSP^MR||Roe^Richard||19551230|M',
      'PV1|1|I|ICU^3^A',
    ].join('\r') + '\r'
  );
}
