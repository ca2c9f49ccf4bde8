import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MllpFramer, mllpFrame } from '../../drivers/sources/hl7/mllp.ts';
import { Hl7ParseError, parseMessage, unescapeHl7 } from '../../drivers/sources/hl7/parse.ts';
import { messageRecord } from '../../drivers/sources/hl7/record.ts';
import { buildAck } from '../../drivers/sources/hl7/ack.ts';
import { adtMessage, oruMessage } from '../helpers/hl7.ts';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('hl7: reading messages', () => {
  it('an ORU^R01 becomes a record with its key fields, patient, order and observations typed', () => {
    const record = messageRecord(parseMessage(utf8(oruMessage({ controlId: 'MSG000123', observations: 3 })), 'UNICODE UTF-8'), true);
    assert.equal(record.message_type, 'ORU^R01');
    assert.equal(record.message_structure, 'ORU_R01');
    assert.equal(record.control_id, 'MSG000123');
    assert.equal(record.sending_application, 'LABSYS');
    assert.equal(record.sending_facility, 'NORTH-LAB');
    assert.equal(record.version, '2.5.1');
    assert.deepEqual(record.patient, {
      ids: [
        { id: 'MRN000123', authority: 'HOSP', type: 'MR' },
        { id: '0123', authority: 'NAT', type: 'SS' },
      ],
      name: { family: 'Doe', given: 'Jane', middle: 'Q' },
      birth_date: '19700101',
      sex: 'F',
    });
    assert.deepEqual(record.visit, { class: 'I', location: 'WARD-7 12 B' });
    const obs = record.observations as Record<string, unknown>[];
    assert.equal(obs.length, 3);
    assert.deepEqual(obs[0]!.id, { id: '2345-7', text: 'Glucose', system: 'LN' });
    assert.equal(typeof obs[0]!.value, 'number', 'an NM value is a number');
    assert.equal(obs[0]!.units, 'mg/dL');
    assert.equal(obs[0]!.status, 'F');
    assert.match(String(record.raw), /^MSH\|.*\rNTE\|1\|\|Specimen received/s);
  });

  it('an ADT^A01 carries its event', () => {
    const record = messageRecord(parseMessage(utf8(adtMessage('A1')), 'UNICODE UTF-8'), false);
    assert.equal(record.message_type, 'ADT^A01');
    assert.deepEqual(record.event, { type: 'A01', recorded_at: '20261206101400' });
    assert.equal(record.raw, undefined, 'keep_raw: false leaves the raw message out');
  });

  it('escape sequences are undone in values, with the delimiters the message declares', () => {
    const d = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
    assert.equal(unescapeHl7('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f', d), 'a|b^c&d~e\\f');
    assert.equal(unescapeHl7('line one\\.br\\line two \\H\\bold\\N\\ \\X48692C\\', d), 'line one\nline two bold Hi,');
    const custom = parseMessage(utf8('MSH#@!$%#A#B#C#D#20260101##ADT@A04#X9#P#2.3\rPID#1##id1!id2##Smith@John$Jr\r'), 'ASCII');
    assert.equal(custom.delimiters.field, '#');
    const rec = messageRecord(custom, false);
    assert.equal(rec.control_id, 'X9');
    assert.deepEqual((rec.patient as { ids: unknown[] }).ids, [{ id: 'id1' }, { id: 'id2' }]);
  });

  it('MSH-18 chooses the character set: 8859/1 bytes are read as Latin-1, invalid UTF-8 is an error (AE)', () => {
    const latin1 = Buffer.from(oruMessage({ controlId: 'L1', charset: '8859/1', patientName: 'Müller^Zoë' }), 'latin1');
    const rec = messageRecord(parseMessage(latin1, 'UNICODE UTF-8'), false);
    assert.deepEqual((rec.patient as { name: unknown }).name, { family: 'Müller', given: 'Zoë' });
    assert.equal(rec.charset, '8859/1');
    // The same bytes undeclared, read as UTF-8 (the default): refused, not silently mangled.
    const undeclared = Buffer.from(oruMessage({ controlId: 'L2', patientName: 'Müller^Zoë' }), 'latin1');
    assert.throws(
      () => parseMessage(undeclared, 'UNICODE UTF-8'),
      (e: unknown) => e instanceof Hl7ParseError && e.severity === 'error',
    );
    // A default of 8859/1 reads them.
    assert.equal((messageRecord(parseMessage(undeclared, '8859/1'), false).patient as { name: { family: string } }).name.family, 'Müller');
  });

  it('what is not a message we can take is refused with the reason: AR for the unreadable, AE for content', () => {
    const reason = (bytes: Buffer) => {
      try {
        messageRecord(parseMessage(bytes, 'UNICODE UTF-8'), false);
        return 'accepted';
      } catch (e) {
        assert.ok(e instanceof Hl7ParseError);
        return `${e.severity}: ${e.message}`;
      }
    };
    assert.match(reason(utf8('PID|1||x\r')), /^reject: the message does not start with an MSH segment/);
    assert.match(reason(utf8('MSH|^^^^|A\r')), /^reject: MSH-1\/MSH-2 do not declare five distinct delimiters/);
    assert.match(reason(utf8('MSH|^~\\&|A|B|C|D|2026||ORU^R01||P|2.5\r')), /^error: MSH-10 \(message control id\) is empty/);
    assert.match(reason(utf8('MSH|^~\\&|A|B|C|D|2026||||P|2.5\r')), /^error: MSH-9/);
    assert.match(reason(utf8('MSH|^~\\&|A|B|C|D|2026||ORU^R01|9|P|2.5||||||UNICODE UTF-16\r')), /^reject: MSH-18 character set "UNICODE UTF-16"/);
    assert.match(reason(utf8('MSH|^~\\&|A|B|C|D|2026||ORU^R01|9|P|2.5\rp!d|1\r')), /^error: segment 2 has no valid segment id/);
  });
});

describe('hl7: MLLP framing and acknowledgements', () => {
  it('frames split anywhere, noise between frames counted, a frame over the cap kept only as its head', () => {
    const a = mllpFrame(utf8(adtMessage('A')));
    const b = mllpFrame(utf8(adtMessage('B')));
    const stream = Buffer.concat([utf8('noise'), a, b]);
    for (let cut = 1; cut < stream.length; cut += 7) {
      const framer = new MllpFramer(1 << 20);
      const frames = [...framer.push(stream.subarray(0, cut)), ...framer.push(stream.subarray(cut))];
      assert.deepEqual(
        frames.map((f) => (f.kind === 'message' ? f.bytes.toString() : 'oversized')),
        [adtMessage('A'), adtMessage('B')],
        `cut at ${cut}`,
      );
      assert.equal(framer.strayBytes, 5);
    }
    const small = new MllpFramer(64);
    const [big] = small.push(mllpFrame(utf8(oruMessage({ controlId: 'BIG' }))));
    assert.equal(big!.kind, 'oversized');
    assert.ok(big?.kind === 'oversized' && big.head.toString().startsWith('MSH|') && big.bytes > 1000);
    assert.equal(small.buffered, 0);
  });

  it('an ACK echoes the control id, swaps sender and receiver, and keeps the declared charset', () => {
    const ack = buildAck(
      'AA',
      ['MSH', '|', '^~\\&', 'LAB', 'NORTH', 'EDGE', 'WARD', 'T', '', 'ORU^R01', 'C42', 'P', '2.5', '', '', '', '', '', '8859/1'],
      undefined,
    ).toString('latin1');
    const [msh, msa] = ack.split('\r');
    const f = msh!.split('|');
    assert.deepEqual([f[2], f[3], f[4], f[5], f[8], f[10], f[11], f[17]], ['EDGE', 'WARD', 'LAB', 'NORTH', 'ACK^R01^ACK', 'P', '2.5', '8859/1']);
    assert.equal(msa, 'MSA|AA|C42');
    const ae = buildAck('AE', ['MSH', '|', '^~\\&', 'LAB'], undefined, 'MSH-10 | empty ^ here').toString();
    assert.match(ae, /\rMSA\|AE\|\|MSH-10 {3}empty {3}here\rERR\|\|\|207\^MSH-10 {3}empty {3}here\^HL70357\|E\r$/);
  });
});
