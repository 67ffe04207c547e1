/** A SessionChannel for unit tests of the registry and the relay: records what was sent and how it closed. */
import type { SessionChannel, SessionCloseReason } from '../services/session-registry.js';

export class FakeChannel implements SessionChannel {
  sent: unknown[] = [];
  closedWith: [SessionCloseReason, string] | undefined;
  get closed() {
    return !!this.closedWith;
  }
  send(msg: unknown): boolean {
    if (this.closed) return false;
    this.sent.push(msg);
    return true;
  }
  close(reason: SessionCloseReason, message: string): void {
    this.closedWith ??= [reason, message];
  }
}
