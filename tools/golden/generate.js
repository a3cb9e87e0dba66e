// Golden POST-signature vectors from the official Node SDK (ali-oss), for tests in Python.
// Offline and deterministic: fixed inputs and dates; the client is only used to sign, never to send.
// Run: npm ci && node generate.js   (writes ../../tests/vectors/post_signatures.json)
'use strict';
const fs = require('fs');
const path = require('path');
const OSS = require('ali-oss');
const { policy2Str } = require('ali-oss/lib/common/utils/policy2Str');
const { getStandardRegion } = require('ali-oss/lib/common/utils/getStandardRegion');
const signUtils = require('ali-oss/lib/common/signUtils');
const version = require('ali-oss/package.json').version;

const BUCKET = 'examplebucket'; // the emulator tests serve exactly this bucket
const CB = Buffer.from(JSON.stringify({
  callbackUrl: 'https://cb.example.com/oss-callback',
  callbackBody: 'bucket=${bucket}&object=${object}&upload_id=${x:upload_id}',
  callbackBodyType: 'application/x-www-form-urlencoded',
})).toString('base64');

// tz: the local zone the SDK runs in; expiration defaults to time + 1 h.
const CASES = [
  { name: 'v4-basic-hangzhou', version: 'v4', time: '2024-05-01T08:00:00Z', region: 'cn-hangzhou',
    akid: 'AKIDEXAMPLE01', secret: 'secret-example-01',
    extra: [['content-length-range', 1, 1048576], ['starts-with', '$key', 'uploads/']] },
  { name: 'v4-sts-beijing', version: 'v4', time: '2024-06-15T12:34:56Z', region: 'cn-beijing',
    akid: 'STS.EXAMPLEID02', secret: 'secret-example-02', token: 'CAIS-example-token-02==',
    extra: [['eq', '$key', 'uploads/abc.png'], ['content-length-range', 10, 10]] },
  { name: 'v4-singapore-in-notin', version: 'v4', time: '2025-01-31T23:59:59Z', region: 'ap-southeast-1',
    akid: 'AKIDEXAMPLE03', secret: 'secret/with+chars=03',
    extra: [['in', '$content-type', ['image/png', 'image/jpeg']], ['not-in', '$cache-control', ['no-cache']]] },
  // region given to the client as 'oss-us-west-1'; the SDK strips 'oss-' for the scope
  { name: 'v4-oss-prefixed-region-us', version: 'v4', time: '2024-02-29T00:00:01Z', region: 'us-west-1',
    akid: 'AKIDEXAMPLE04', secret: 'secret-example-04',
    extra: [{ key: 'uploads/leap.txt' }, ['content-length-range', 0, 5]] },
  { name: 'v4-frankfurt-non-ascii-key', version: 'v4', time: '2024-10-10T10:10:10Z', region: 'eu-central-1',
    akid: 'AKIDEXAMPLE05', secret: 'secret-example-05',
    extra: [['eq', '$key', 'uploads/照片/été 🌅.png'], ['eq', '$x:filename', 'été 🌅.png']] },
  { name: 'v4-escapes-dollar-quote-backslash', version: 'v4', time: '2024-03-03T03:03:03Z', region: 'cn-shanghai',
    akid: 'AKIDEXAMPLE06', secret: 'secret-example-06',
    extra: [['eq', '$key', 'a/${filename}'], ['eq', '$x-oss-meta-note', 'say "hi" \\ /slash\\/ $5']] },
  // JSON escapes for control characters and characters some encoders escape (<, >, &, U+2028)
  { name: 'v4-control-chars-and-html', version: 'v4', time: '2024-07-07T07:07:07Z', region: 'cn-qingdao',
    akid: 'AKIDEXAMPLE13', secret: 'secret-example-13',
    extra: [['starts-with', '$key', 'm/'], ['eq', '$x-oss-meta-memo', 'tab\there\nline <b>&amp;</b> \u2028 \u0001 ü']] },
  { name: 'v4-callback-and-upload-id-sts', version: 'v4', time: '2024-08-08T08:08:08Z', region: 'cn-shenzhen',
    akid: 'STS.EXAMPLEID07', secret: 'secret-example-07', token: 'token-example-07/+=',
    extra: [['eq', '$callback', CB], ['eq', '$x:upload_id', '0123456789abcdef0123456789abcdef'],
      ['eq', '$x-oss-forbid-overwrite', 'true'], ['eq', '$x-oss-content-type', 'image/png']] },
  // Local (Shanghai) date is already 2024-03-02; the scope must use the UTC date 2024-03-01.
  { name: 'v4-utc-date-differs-from-shanghai', version: 'v4', tz: 'Asia/Shanghai', time: '2024-03-01T20:30:00Z',
    region: 'cn-hangzhou', akid: 'AKIDEXAMPLE08', secret: 'secret-example-08',
    extra: [['starts-with', '$key', 'u/']] },
  // Local (Los Angeles) date is still 2024-12-31; UTC is 2025-01-01.
  { name: 'v4-utc-date-differs-from-los-angeles', version: 'v4', tz: 'America/Los_Angeles', time: '2025-01-01T00:30:00Z',
    region: 'us-east-1', akid: 'AKIDEXAMPLE09', secret: 'secret-example-09',
    extra: [['starts-with', '$key', 'u/']] },
  // Spec §10.6 (b1) cross-check: ali-oss must give the same bytes and x-oss-signature. Not written to the
  // file (its success_action_status 201 would change the upload answer the emulator tests expect).
  { name: 'v4-spec-10-6-b1', emit: false, expect: 'be399d10806a48f6356ea4d13c99431814b44a0f416eca516484df0ee23be1fb',
    version: 'v4', time: '2023-12-03T12:12:12Z', expiration: '2023-12-03T13:00:00.000Z',
    region: 'cn-hangzhou', akid: 'ak', secret: 'sk',
    extra: [['content-length-range', 1, 1024], ['eq', '$success_action_status', '201'],
      ['starts-with', '$key', 'user/eric/'], ['in', '$content-type', ['image/jpg', 'image/png']],
      ['not-in', '$cache-control', ['no-cache']]] },
  { name: 'v1-basic', version: 'v1', time: '2024-05-01T08:00:00Z', akid: 'AKIDEXAMPLE10', secret: 'secret-example-10',
    extra: [['content-length-range', 1, 1024], ['starts-with', '$key', 'uploads/']] },
  { name: 'v1-sts-non-ascii', version: 'v1', time: '2024-05-01T08:00:00Z', akid: 'STS.EXAMPLEID11',
    secret: 'secret-example-11', token: 'token-example-11',
    extra: [['eq', '$key', 'uploads/文件.txt'], ['in', '$content-type', ['text/plain']]] },
  // Java SDK PostPolicyTest's secret and conditions; ali-oss does not escape '/', so bytes differ from Java's.
  { name: 'v1-java-style-conditions', version: 'v1', time: '2020-03-19T02:44:06.476Z', akid: 'AAAAAAAAAAAAAAAA',
    secret: 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',
    extra: [['starts-with', '$key', 'user/eric'], ['starts-with', '$x-oss-meta-tag', 'dummy_etag'],
      ['content-length-range', 1, 1024], ['in', '$content-type', ['image/jpg', 'image/png']],
      ['not-in', '$cache-control', ['no-cache']]] },
  { name: 'v1-sts-callback-map-form-vars', version: 'v1', time: '2024-11-11T11:11:11Z', akid: 'STS.EXAMPLEID12',
    secret: 'secret-example-12', token: 'token-example-12',
    extra: [['eq', '$callback', CB], { 'x:upload_id': 'fedcba9876543210fedcba9876543210' }, { key: 'uploads/ok.bin' }] },
];

const pad = (n) => String(n).padStart(2, '0');
const localDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; // honours TZ

const out = [];
for (const c of CASES) {
  const tz = c.tz || 'UTC';
  process.env.TZ = tz; // Node re-reads TZ on assignment
  const when = new Date(c.time);
  if (new Date(2024, 0, 1).getTimezoneOffset() !== { UTC: 0, 'Asia/Shanghai': -480, 'America/Los_Angeles': 480 }[tz]) {
    throw new Error(`${c.name}: TZ=${tz} did not take effect`);
  }
  const token = c.token || null;
  const client = new OSS({ accessKeyId: c.akid, accessKeySecret: c.secret, stsToken: token || undefined,
    region: `oss-${c.region || 'cn-hangzhou'}`, bucket: BUCKET });
  const conditions = [{ bucket: BUCKET }];
  let credential = null;
  let xOssDate = null;
  let region = null;
  if (c.version === 'v4') {
    region = getStandardRegion(client.options.region);
    xOssDate = when.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z'); // UTC by definition
    credential = signUtils.getCredential(xOssDate.slice(0, 8), region, c.akid);
    conditions.push({ 'x-oss-signature-version': 'OSS4-HMAC-SHA256' }, { 'x-oss-credential': credential },
      { 'x-oss-date': xOssDate });
  }
  if (token) conditions.push({ 'x-oss-security-token': token });
  const expiration = c.expiration || new Date(when.getTime() + 3600 * 1000).toISOString();
  const policyObject = { expiration, conditions: conditions.concat(c.extra) };
  const policy = policy2Str(policyObject);
  const policyB64 = Buffer.from(policy, 'utf8').toString('base64');
  let signature;
  if (c.version === 'v4') {
    signature = client.signPostObjectPolicyV4(policyObject, when);
    // Which date did the SDK put in the signing key: UTC or local? (SDK helper, not our crypto.)
    const utcSig = signUtils.getSignatureV4(c.secret, xOssDate.slice(0, 8), region, policyB64);
    if (signature !== utcSig) throw new Error(`${c.name}: ali-oss did not sign with the UTC date`);
    const local = localDate(when).replace(/-/g, '');
    if (local !== xOssDate.slice(0, 8) &&
        signUtils.getSignatureV4(c.secret, local, region, policyB64) === signature) {
      throw new Error(`${c.name}: local date gave the same signature`);
    }
  } else {
    const params = client.calculatePostSignature(policyObject);
    if (params.policy !== policyB64 || params.OSSAccessKeyId !== c.akid) throw new Error(`${c.name}: V1 form differs`);
    signature = params.Signature;
  }
  if (c.expect !== undefined) {
    if (signature !== c.expect) throw new Error(`${c.name}: ali-oss gave ${signature}, expected ${c.expect}`);
    console.log(`${c.name}: ali-oss reproduces the expected signature`);
  }
  if (c.emit === false) continue;
  out.push({
    name: c.name, version: c.version, access_key_id: c.akid, access_key_secret: c.secret, security_token: token,
    region, x_oss_date: xOssDate, credential, local_timezone: tz, local_date: localDate(when),
    policy_object: policyObject, policy, policy_b64: policyB64, signature,
  });
}
const target = path.join(__dirname, '..', '..', 'tests', 'vectors', 'post_signatures.json');
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.writeFileSync(target, JSON.stringify({ generator: `ali-oss@${version}`, cases: out }, null, 2) + '\n');
console.log(`wrote ${out.length} cases to ${target}`);
