// Golden POST-signature vectors from the official Node SDK (ali-oss), for tests in Python.
// Offline and deterministic: fixed inputs and dates; the client is never used for a request.
// Run: npm ci && node generate.js   (writes ../../tests/vectors/post_signatures.json)
'use strict';
const fs = require('fs');
const path = require('path');
const OSS = require('ali-oss');
const dateformat = require('dateformat');
const { policy2Str } = require('ali-oss/lib/common/utils/policy2Str');
const { getStandardRegion } = require('ali-oss/lib/common/utils/getStandardRegion');
const version = require('ali-oss/package.json').version;

const CB = Buffer.from(JSON.stringify({
  callbackUrl: 'https://cb.example.com/oss-callback',
  callbackBody: 'bucket=${bucket}&object=${object}&upload_id=${x:upload_id}',
  callbackBodyType: 'application/x-www-form-urlencoded',
})).toString('base64');

// [name, version, tz, isoTime, region, akid, secret, token, extraConditions]
const CASES = [
  ['v4-basic-hangzhou', 'v4', 'UTC', '2024-05-01T08:00:00Z', 'cn-hangzhou', 'AKIDEXAMPLE01', 'secret-example-01', null,
    [['content-length-range', 1, 1048576], ['starts-with', '$key', 'uploads/']]],
  ['v4-sts-beijing', 'v4', 'UTC', '2024-06-15T12:34:56Z', 'cn-beijing', 'STS.EXAMPLEID02', 'secret-example-02', 'CAIS-example-token-02==',
    [['eq', '$key', 'uploads/abc.png'], ['content-length-range', 10, 10]]],
  ['v4-singapore-in-notin', 'v4', 'UTC', '2025-01-31T23:59:59Z', 'ap-southeast-1', 'AKIDEXAMPLE03', 'secret/with+chars=03', null,
    [['in', '$content-type', ['image/png', 'image/jpeg']], ['not-in', '$cache-control', ['no-cache']]]],
  ['v4-oss-prefixed-region-us', 'v4', 'UTC', '2024-02-29T00:00:01Z', 'oss-us-west-1', 'AKIDEXAMPLE04', 'secret-example-04', null,
    [{ key: 'uploads/leap.txt' }, ['content-length-range', 0, 5]]],
  ['v4-frankfurt-non-ascii-key', 'v4', 'UTC', '2024-10-10T10:10:10Z', 'eu-central-1', 'AKIDEXAMPLE05', 'secret-example-05', null,
    [['eq', '$key', 'uploads/照片/été 🌅.png'], ['eq', '$x:filename', 'été 🌅.png']]],
  ['v4-escapes-dollar-quote-backslash', 'v4', 'UTC', '2024-03-03T03:03:03Z', 'cn-shanghai', 'AKIDEXAMPLE06', 'secret-example-06', null,
    [['eq', '$key', 'a/${filename}'], ['eq', '$x-oss-meta-note', 'say "hi" \\ /slash\\/ $5']]],
  ['v4-callback-and-upload-id-sts', 'v4', 'UTC', '2024-08-08T08:08:08Z', 'cn-shenzhen', 'STS.EXAMPLEID07', 'secret-example-07', 'token-example-07/+=',
    [['eq', '$callback', CB], ['eq', '$x:upload_id', '0123456789abcdef0123456789abcdef'],
      ['eq', '$x-oss-forbid-overwrite', 'true'], ['eq', '$x-oss-content-type', 'image/png']]],
  // Local (Shanghai) date is already 2024-03-02; the scope must use the UTC date 2024-03-01.
  ['v4-utc-date-differs-from-shanghai', 'v4', 'Asia/Shanghai', '2024-03-01T20:30:00Z', 'cn-hangzhou', 'AKIDEXAMPLE08', 'secret-example-08', null,
    [['starts-with', '$key', 'u/']]],
  // Local (Los Angeles) date is still 2024-12-31; UTC is 2025-01-01.
  ['v4-utc-date-differs-from-los-angeles', 'v4', 'America/Los_Angeles', '2025-01-01T00:30:00Z', 'us-east-1', 'AKIDEXAMPLE09', 'secret-example-09', null,
    [['starts-with', '$key', 'u/']]],
  ['v1-basic', 'v1', 'UTC', '2024-05-01T08:00:00Z', null, 'AKIDEXAMPLE10', 'secret-example-10', null,
    [['content-length-range', 1, 1024], ['starts-with', '$key', 'uploads/']]],
  ['v1-sts-non-ascii', 'v1', 'UTC', '2024-05-01T08:00:00Z', null, 'STS.EXAMPLEID11', 'secret-example-11', 'token-example-11',
    [['eq', '$key', 'uploads/文件.txt'], ['in', '$content-type', ['text/plain']]]],
  ['v1-java-sdk-vector', 'v1', 'UTC', '2020-03-19T03:44:06Z', null, 'AAAAAAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', null,
    [['starts-with', '$key', 'user/eric'], ['content-length-range', 1, 1024]]],
];

function expiration(iso) {
  return new Date(Date.parse(iso) + 3600 * 1000).toISOString(); // ...T..:..:..000Z
}

const out = [];
for (const [name, ver, tz, iso, region, akid, secret, token, extra] of CASES) {
  process.env.TZ = tz; // Node re-reads TZ on assignment
  const when = new Date(iso);
  const client = new OSS({ accessKeyId: akid, accessKeySecret: secret, stsToken: token || undefined,
    region: region ? (region.startsWith('oss-') ? region : `oss-${region}`) : 'oss-cn-hangzhou', bucket: 'examplebucket' });
  const conditions = [{ bucket: 'examplebucket' }];
  let credential = null;
  let xOssDate = null;
  if (ver === 'v4') {
    xOssDate = dateformat(when, "UTC:yyyymmdd'T'HHMMss'Z'");
    credential = `${akid}/${xOssDate.split('T')[0]}/${getStandardRegion(client.options.region)}/oss/aliyun_v4_request`;
    conditions.push({ 'x-oss-signature-version': 'OSS4-HMAC-SHA256' }, { 'x-oss-credential': credential },
      { 'x-oss-date': xOssDate });
  }
  if (token) conditions.push({ 'x-oss-security-token': token });
  const policyObject = { expiration: expiration(iso), conditions: conditions.concat(extra) };
  const policy = policy2Str(policyObject);
  const policyB64 = Buffer.from(policy, 'utf8').toString('base64');
  let signature;
  if (ver === 'v4') {
    signature = client.signPostObjectPolicyV4(policyObject, when);
  } else {
    const params = client.calculatePostSignature(policyObject);
    if (params.policy !== policyB64) throw new Error(`${name}: policy base64 differs`);
    signature = params.Signature;
  }
  out.push({
    name, version: ver, access_key_id: akid, access_key_secret: secret, security_token: token,
    region: ver === 'v4' ? getStandardRegion(client.options.region) : null,
    x_oss_date: xOssDate, credential, local_timezone: tz,
    local_date: dateformat(when, 'yyyy-mm-dd'),
    policy_object: policyObject, policy, policy_b64: policyB64, signature,
  });
}
const target = path.join(__dirname, '..', '..', 'tests', 'vectors', 'post_signatures.json');
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.writeFileSync(target, JSON.stringify({ generator: `ali-oss@${version}`, cases: out }, null, 2) + '\n');
console.log(`wrote ${out.length} cases to ${target}`);
