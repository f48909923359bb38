// The encrypt plugin: the `encrypt` step and the openpgp codec that undoes it.
import { definePlugin } from '../../src/plugin-api.js';
import { encryptStep } from './encrypt-step.js';
import { openpgpCodec } from './openpgp-codec.js';

// OpenPGP encryption of a stream (passphrase or public keys) that stock gpg decrypts, and its decoder.
export default definePlugin({
  name: 'encrypt',
  contract: '2.0',
  steps: [encryptStep],
  codecs: [openpgpCodec],
});
