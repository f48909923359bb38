// The openpgp codec's decoder: a SEIPD v1 message decrypted natively, anything else handed to openpgp.js.
import { Duplex } from 'node:stream';
import type { DecryptedSessionKey, SessionKey } from 'openpgp';
import type { ArtifactLayer } from '../../src/plugin-api.js';
import { isAes, quickCheck } from './cfb.js';
import { decryptError, wrongKeyError } from './decrypt-error.js';
import { legacyDecoder, type Unlock } from './legacy-decoder.js';
import { readMessageHead } from './message-head.js';
import { openpgp } from './openpgp-lib.js';
import { CHUNK_BYTES } from './pgp-settings.js';
import { NotLiteral, QuickCheckFailed, SeipdReader } from './seipd-reader.js';

/** Input held while the session key is being found; past it, writes wait. */
const HOLD_BYTES = 4 * 1024 * 1024;

/** A message start that is still not understood after this many bytes goes to openpgp.js. */
const HEAD_LIMIT = 1024 * 1024;

type State = 'head' | 'key' | 'native' | 'legacy';

// The key packets go to openpgp.js for the session key (a passphrase's key derivation, or the private key's
// decryption); the bulk is decrypted here. Until the first bytes of plaintext prove the message is one this
// decoder reads (a literal packet in a SEIPD v1 packet, AES), all input is kept, so that openpgp.js can be
// handed the whole message instead: AEAD, compressed or signed messages, other ciphers.
/** Decrypts a binary OpenPGP message written to it; errors as decryptError does. */
export class NativeDecoder extends Duplex {
  private state: State = 'head';
  /** Input kept until the native reader is committed. */
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private reader: SeipdReader | undefined;
  /** The session key the reader uses (openpgp.js gets it if the reader cannot go on). */
  private sessionKey: SessionKey | undefined;
  private legacy: Duplex | undefined;
  /** A write's callback held back: by a full output, or while the session key is being found. */
  private held: (() => void) | undefined;
  /** The end's callback, when the input ended before the session key was found. */
  private finalCallback: ((error?: Error | null) => void) | undefined;
  private outputFull = false;

  constructor(
    private readonly unlock: Unlock,
    private readonly layer: ArtifactLayer,
  ) {
    super({ readableHighWaterMark: CHUNK_BYTES, writableHighWaterMark: CHUNK_BYTES });
    void openpgp().catch(() => undefined); // start loading while the first bytes arrive
  }

  /** Which decoder reads the message, once that is known: this one, or openpgp.js. */
  get decodedBy(): 'native' | 'openpgp.js' | undefined {
    return this.state === 'native' ? 'native' : this.state === 'legacy' ? 'openpgp.js' : undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    switch (this.state) {
      case 'head':
        this.keep(chunk);
        this.readHead(false);
        return (this.state as State) === 'key' && this.keptBytes > HOLD_BYTES ? void (this.held = done) : done();
      case 'key':
        this.keep(chunk);
        return this.keptBytes > HOLD_BYTES ? void (this.held = done) : done();
      case 'native':
        if (!this.reader!.committed) this.keep(chunk);
        this.feed(chunk);
        return this.outputFull ? void (this.held = done) : done();
      case 'legacy':
        return void (this.legacy!.write(chunk) ? done() : this.legacy!.once('drain', () => done()));
    }
  }

  override _final(done: (error?: Error | null) => void): void {
    if (this.state === 'head') this.readHead(true);
    if (this.state === 'key') return void (this.finalCallback = done);
    this.finish(done);
  }

  override _read(): void {
    this.outputFull = false;
    this.legacy?.resume();
    const held = this.held;
    if (held === undefined || this.state === 'key') return;
    this.held = undefined;
    held();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.legacy?.destroy();
    this.kept = [];
    done(error);
  }

  private keep(chunk: Buffer): void {
    this.kept.push(chunk);
    this.keptBytes += chunk.length;
  }

  // Parses the start of the message; `ended`: no more input will come.
  private readHead(ended: boolean): void {
    const whole = Buffer.concat(this.kept);
    this.kept = [whole];
    const head = readMessageHead(whole);
    if (head.kind === 'other' || (head.kind === 'more' && (ended || whole.length > HEAD_LIMIT))) return this.toLegacy(this.unlock);
    if (head.kind === 'more') return;
    this.state = 'key';
    const useKeys = this.unlock.decryptionKeys !== undefined && (head.hasPkesk || this.unlock.passwords === undefined);
    const unlock = useKeys ? { decryptionKeys: this.unlock.decryptionKeys } : { passwords: this.unlock.passwords };
    const firstCipher = Buffer.from(head.firstCipher);
    const seipdAt = head.seipdAt;
    sessionKeys(head.keyPackets, unlock).then(
      (keys) => this.withKeys(keys, firstCipher, seipdAt),
      (err: unknown) => this.fail(err),
    );
  }

  // The session key is known: start decrypting what was kept, or hand it all to openpgp.js.
  private withKeys(keys: DecryptedSessionKey[], firstCipher: Buffer, seipdAt: number): void {
    if (this.destroyed) return;
    const native = keys.find((k) => isAes(k.algorithm) && quickCheck(k.algorithm!, k.data, firstCipher));
    const other = keys.find((k) => !isAes(k.algorithm) && k.algorithm !== null);
    if (native) {
      this.state = 'native';
      this.sessionKey = { data: native.data, algorithm: native.algorithm! };
      this.reader = new SeipdReader(native.algorithm!, native.data, (data) => {
        if (!this.push(data)) this.outputFull = true;
      });
      const whole = Buffer.concat(this.kept);
      this.kept = [whole];
      this.feed(whole.subarray(seipdAt + 1));
    } else if (other) {
      this.toLegacy({ sessionKeys: { data: other.data, algorithm: other.algorithm! } });
    } else {
      return this.fail(wrongKeyError(this.layer));
    }
    if (this.finalCallback) this.finish(this.finalCallback);
    else if (!this.outputFull) this._read();
  }

  private feed(chunk: Buffer): void {
    if (this.state !== 'native') return;
    try {
      this.reader!.write(chunk);
      if (this.reader!.committed && this.keptBytes > 0) {
        this.kept = [];
        this.keptBytes = 0;
      }
    } catch (err) {
      if (err instanceof NotLiteral) this.toLegacy({ sessionKeys: this.sessionKey! });
      else this.fail(err);
    }
  }

  private finish(done: (error?: Error | null) => void): void {
    if (this.destroyed) return done();
    if (this.state === 'legacy') {
      this.legacy!.end();
      return done();
    }
    try {
      this.reader!.end();
    } catch (err) {
      return done(this.mapError(err));
    }
    this.push(null);
    done();
  }

  // Everything kept, and all later input, goes through openpgp.js.
  private toLegacy(unlock: Unlock): void {
    this.state = 'legacy';
    this.reader = undefined;
    const legacy = (this.legacy = legacyDecoder(unlock, this.layer, false));
    legacy.on('data', (data: Buffer) => {
      if (!this.push(data)) legacy.pause();
    });
    legacy.on('end', () => this.push(null));
    legacy.on('error', (err) => this.destroy(err));
    for (const chunk of this.kept) legacy.write(chunk);
    this.kept = [];
    this.keptBytes = 0;
  }

  private fail(err: unknown): void {
    if (!this.destroyed) this.destroy(this.mapError(err));
  }

  private mapError(err: unknown): Error {
    return err instanceof QuickCheckFailed ? wrongKeyError(this.layer, err) : decryptError(err, this.layer);
  }
}

// The session keys the key packets give for these keys (openpgp.js throws when none does).
async function sessionKeys(keyPackets: Uint8Array, unlock: Unlock): Promise<DecryptedSessionKey[]> {
  const { decryptSessionKeys, readMessage } = await openpgp();
  const message = await readMessage({ binaryMessage: keyPackets });
  return decryptSessionKeys({ message, ...unlock });
}
