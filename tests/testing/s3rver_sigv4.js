#!/usr/bin/env node
// Test front for s3rver: s3rver 3.x accepts any well-formed SigV4 request
// without checking the signature, so this front verifies AWS Signature V4
// itself (an implementation independent of the C++ signer, on node's
// crypto) before handing the request to s3rver's Koa app. It also
// implements AbortMultipartUpload and ListMultipartUploads, which s3rver
// lacks (answering from s3rver's own upload directories), and can inject
// faults for the fault tests.
//
// usage: node s3rver_sigv4.js MODULE_DIR DATA_DIR PORT BUCKET ACCESS_KEY SECRET [LOG_FILE]
//   MODULE_DIR  the s3rver package directory (node_modules/s3rver)
//   PORT        0 for an ephemeral port; prints "listening on 127.0.0.1:<port>"
//   LOG_FILE    appends "METHOD URL" per request, on arrival
// env CKPTD_S3_FAIL_PART=N: answer UploadPart number N with 400 InjectedFault.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const [modDir, dataDir, portArg, bucket, accessKey, secret, logFile] = process.argv.slice(2);
const S3rver = require(modDir);
const AWSAccount = require(path.join(modDir, 'lib', 'models', 'account'));

// Only our key pair is valid.
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKey, secret);
const secrets = new Map([[accessKey, secret]]);
const failPart = process.env.CKPTD_S3_FAIL_PART || '';

function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data).digest();
}
function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}
function xmlError(res, status, code, message) {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// Returns null when the request is correctly signed, else [code, message].
function verify(req) {
  const auth = req.headers['authorization'];
  if (!auth) return ['AccessDenied', 'Anonymous access is refused by the ckptd test front'];
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return ['AuthorizationHeaderMalformed', 'Unparseable Authorization header'];
  const [, keyId, date, region, signedHeaders, signature] = m;
  const key = secrets.get(keyId);
  if (!key) return ['InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  const amzDate = req.headers['x-amz-date'] || '';
  if (!amzDate.startsWith(date)) return ['SignatureDoesNotMatch', 'x-amz-date does not match the credential date'];
  const names = signedHeaders.split(';');
  for (const need of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
    if (!names.includes(need)) return ['SignatureDoesNotMatch', `${need} is not signed`];
  }
  const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8),
                     +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(Date.now() - t) > 15 * 60 * 1000) return ['RequestTimeTooSkewed', 'x-amz-date too far off'];

  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const params = rawQuery === '' ? [] : rawQuery.split('&').map(p => {
    const eq = p.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq));
    const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1));
    return [rfc3986(k), rfc3986(v)];
  });
  params.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const canonicalQuery = params.map(([k, v]) => `${k}=${v}`).join('&');
  const canonicalHeaders = names.map(n => {
    const v = req.headers[n];
    if (v === undefined) return null;
    return `${n}:${String(v).trim().replace(/\s+/g, ' ')}\n`;
  });
  if (canonicalHeaders.includes(null)) return ['SignatureDoesNotMatch', 'a signed header is missing'];
  const canonicalRequest = [req.method, rawPath, canonicalQuery, canonicalHeaders.join(''), signedHeaders,
                            req.headers['x-amz-content-sha256']].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope,
                        crypto.createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let k = hmac('AWS4' + key, date);
  k = hmac(k, region);
  k = hmac(k, 's3');
  k = hmac(k, 'aws4_request');
  const expected = hmac(k, stringToSign).toString('hex');
  if (expected !== signature) {
    return ['SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'];
  }
  return null;
}

async function main() {
  const app = new S3rver({ directory: dataDir, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
  await app.configureBuckets();
  const handle = app.callback();
  const server = http.createServer((req, res) => {
    // Logged on arrival, before any answer, so a client that got its
    // answer always finds its request in the log.
    if (logFile) fs.appendFileSync(logFile, `${req.method} ${req.url}\n`);
    const bad = verify(req);
    if (bad) return xmlError(res, 403, bad[0], bad[1]);
    const url = new URL(req.url, 'http://x');
    const uploadId = url.searchParams.get('uploadId');
    if (failPart && req.method === 'PUT' && url.searchParams.get('partNumber') === failPart) {
      req.resume();
      return xmlError(res, 400, 'InjectedFault', `part ${failPart} refused by the test front`);
    }
    const pathParts = url.pathname.split('/').filter(p => p !== '');
    if (req.method === 'GET' && pathParts.length === 1 && url.searchParams.has('uploads')) {
      // ListMultipartUploads (one page, all of them): the uploads s3rver
      // keeps on disk, each directory holding the object key in 'key'.
      const b = pathParts[0];
      const prefix = url.searchParams.get('prefix') || '';
      const root = app.store.getResourcePath(b, undefined, 'uploads');
      const uploads = [];
      for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) {
        let key;
        try {
          key = fs.readFileSync(path.join(root, id, 'key'), 'utf8');
        } catch (e) {
          continue;  // being created or removed
        }
        if (key.startsWith(prefix)) uploads.push([key, id]);
      }
      uploads.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : 1));
      res.writeHead(200, { 'Content-Type': 'application/xml' });
      return res.end('<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>' +
                     `<Bucket>${xmlEscape(b)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix>` +
                     '<MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>' +
                     uploads.map(([k, id]) => `<Upload><Key>${xmlEscape(k)}</Key><UploadId>${xmlEscape(id)}</UploadId></Upload>`).join('') +
                     '</ListMultipartUploadsResult>');
    }
    if (req.method === 'DELETE' && uploadId) {
      // AbortMultipartUpload: drop the upload's parts.
      const b = url.pathname.split('/')[1];
      const dir = path.join(app.store.getResourcePath(b, undefined, 'uploads'), path.basename(uploadId));
      if (!fs.existsSync(dir)) return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      fs.rmSync(dir, { recursive: true, force: true });
      res.writeHead(204);
      return res.end();
    }
    return handle(req, res);
  });
  server.listen(Number(portArg), '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
