import type { IDisconnectPacket } from 'mqtt';
import type { ProblemReporter } from '../../agent/sdk/index.ts';

/** MQTT 5 DISCONNECT reason: another connection with this client id took the session over. */
const SESSION_TAKEN_OVER = 0x8e;
/** A connection the broker ends sooner than this after its CONNACK is "short-lived"… */
const SHORT_LIVED_MS = 10_000;
/** …and this many in a row (MQTT 3.1.1 says nothing) look like a client id used twice. */
const SHORT_LIVED_IN_A_ROW = 3;

/**
 * Two MQTT clients with one client id (two gateways given the same device id, or the same source config)
 * knock each other off the broker in a loop, which otherwise shows only as connection resets. Fed a client's
 * connects, DISCONNECT packets and closes, this reports an MQTT 5 DISCONNECT "session taken over", or repeated
 * drops right after a successful CONNACK, as such (`client_id_taken_over`, naming the client id).
 */
export class TwinClientWatch {
  private readonly clientId: string;
  private readonly problems: ProblemReporter | undefined;
  private readonly hint: string;
  /** When the current connection got its CONNACK; undefined while not connected. */
  private connectedAt: number | undefined;
  private shortLived = 0;
  /** The broker said why it ended this connection (MQTT 5): no guessing from its lifetime. */
  private takenOver = false;

  /** `hint`: the likely cause, for the message ("duplicate device id?"). */
  constructor(clientId: string, problems: ProblemReporter | undefined, hint: string) {
    this.clientId = clientId;
    this.problems = problems;
    this.hint = hint;
  }

  connected(): void {
    this.connectedAt = Date.now();
    this.takenOver = false;
  }

  disconnected(packet: IDisconnectPacket): void {
    if (packet.reasonCode !== SESSION_TAKEN_OVER) return;
    this.takenOver = true;
    this.report('the broker ended the session: taken over by another connection (MQTT 5 reason 0x8E)');
  }

  /** The connection closed; `closing`: by us, which says nothing about a twin. */
  closed(closing: boolean): void {
    const since = this.connectedAt;
    this.connectedAt = undefined;
    if (since === undefined || closing || this.takenOver) return;
    if (Date.now() - since >= SHORT_LIVED_MS) {
      this.shortLived = 0;
      return;
    }
    this.shortLived++;
    if (this.shortLived >= SHORT_LIVED_IN_A_ROW) {
      this.report(`the broker closed ${this.shortLived} connections in a row within ${SHORT_LIVED_MS / 1000} s of accepting them`);
    }
  }

  private report(evidence: string): void {
    this.problems?.report(
      'client_id_taken_over',
      `another client connected with client id ${this.clientId} (${this.hint})`,
      { client_id: this.clientId, evidence },
      { key: this.clientId, level: 'error' },
    );
  }
}
