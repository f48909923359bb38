// The first-party plugins, loaded by default. Each uses the core only through src/plugin-api.ts.
import backup from './backup/index.js';
import compress from './compress/index.js';
import encrypt from './encrypt/index.js';
import mysql from './mysql/index.js';
import notify from './notify/index.js';
import postgres from './postgres/index.js';
import sqlite from './sqlite/index.js';
import storageFile from './storage-file/index.js';
import storageS3 from './storage-s3/index.js';
import storageSftp from './storage-sftp/index.js';

export default [backup, compress, encrypt, mysql, notify, postgres, sqlite, storageFile, storageS3, storageSftp];
