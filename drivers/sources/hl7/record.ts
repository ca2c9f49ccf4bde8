/**
 * The record of one HL7 message: the key fields an operator filters on at the centre as typed fields, the
 * segments that carry a site's data (patient, visit, orders, observations) as structured data, and the raw
 * message, so nothing a later consumer needs is lost.
 */
import type { AgentRecord } from '../../../agent/sdk/index.ts';
import { components, type Delimiters, Hl7ParseError, type ParsedMessage, repetitions, type Segment } from './parse.ts';

/** The identity of a message for recognising it when it is sent again: who sent it and its control id. */
export interface MessageKey {
  sendingApplication: string;
  sendingFacility: string;
  controlId: string;
}

export function messageKey(msh: Segment, d: Delimiters): MessageKey {
  return {
    sendingApplication: components(msh.fields[3], d)[0] ?? '',
    sendingFacility: components(msh.fields[4], d)[0] ?? '',
    controlId: components(msh.fields[10], d)[0] ?? '',
  };
}

const NUMERIC = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;

/** Drops empty values so records carry what the message said, not its empty positions. */
function compact<T extends Record<string, unknown>>(object: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object)) {
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as Partial<T>;
}

/** A coded element (CE/CWE): identifier, text, coding system. */
function coded(raw: string | undefined, d: Delimiters) {
  const [id, text, system] = components(raw, d);
  return compact({ id, text, system });
}

function patient(pid: Segment, d: Delimiters) {
  const [family, given, middle] = components(pid.fields[5], d);
  return compact({
    ids: repetitions(pid.fields[3], d).map(([id, , , authority, type]) => compact({ id, authority, type })),
    name: compact({ family, given, middle }),
    birth_date: components(pid.fields[7], d)[0],
    sex: components(pid.fields[8], d)[0],
  });
}

function observation(obx: Segment, d: Delimiters) {
  const type = components(obx.fields[2], d)[0];
  const values = repetitions(obx.fields[5], d).map((c) => (c.length === 1 ? c[0]! : c.join(d.component)));
  const value: unknown = values.length === 1 && type === 'NM' && NUMERIC.test(values[0]!) ? Number(values[0]) : values.length === 1 ? values[0] : values;
  return compact({
    set_id: components(obx.fields[1], d)[0],
    value_type: type,
    id: coded(obx.fields[3], d),
    sub_id: components(obx.fields[4], d)[0],
    value,
    units: components(obx.fields[6], d)[0],
    reference_range: components(obx.fields[7], d)[0],
    flags: repetitions(obx.fields[8], d).map((c) => c[0]!),
    status: components(obx.fields[11], d)[0],
    observed_at: components(obx.fields[14], d)[0],
  });
}

function order(obr: Segment, d: Delimiters) {
  return compact({
    placer_number: components(obr.fields[2], d)[0],
    filler_number: components(obr.fields[3], d)[0],
    service: coded(obr.fields[4], d),
    observed_at: components(obr.fields[7], d)[0],
    result_status: components(obr.fields[25], d)[0],
  });
}

/** Builds the record; throws Hl7ParseError (AE) when a field the gateway needs to answer is missing. */
export function messageRecord(message: ParsedMessage, keepRaw: boolean): AgentRecord {
  const d = message.delimiters;
  const msh = message.segments[0]!;
  const key = messageKey(msh, d);
  const [code, trigger, structure] = components(msh.fields[9], d);
  if (!code) throw new Hl7ParseError('error', 'MSH-9 (message type) is empty');
  if (!key.controlId) throw new Hl7ParseError('error', 'MSH-10 (message control id) is empty');
  const byId = (id: string) => message.segments.filter((s) => s.id === id);
  const pid = byId('PID')[0];
  const pv1 = byId('PV1')[0];
  const evn = byId('EVN')[0];
  const record: AgentRecord = compact({
    message_type: trigger ? `${code}^${trigger}` : code,
    message_structure: structure,
    control_id: key.controlId,
    sending_application: key.sendingApplication,
    sending_facility: key.sendingFacility,
    receiving_application: components(msh.fields[5], d)[0],
    receiving_facility: components(msh.fields[6], d)[0],
    message_time: components(msh.fields[7], d)[0],
    processing_id: components(msh.fields[11], d)[0],
    version: components(msh.fields[12], d)[0],
    charset: message.charset,
    event: evn ? compact({ type: components(evn.fields[1], d)[0], recorded_at: components(evn.fields[2], d)[0] }) : undefined,
    patient: pid ? patient(pid, d) : undefined,
    visit: pv1 ? compact({ class: components(pv1.fields[2], d)[0], location: components(pv1.fields[3], d).filter(Boolean).join(' ') }) : undefined,
    orders: byId('OBR').map((s) => order(s, d)),
    observations: byId('OBX').map((s) => observation(s, d)),
    segments: message.segments.length,
    raw: keepRaw ? message.text : undefined,
  }) as AgentRecord;
  return record;
}
