// Drives the official Node SDK (ali-oss) through the calls of issue 21 against the emulator.
// argv: endpoint bucket keyId secret region v1|v4. Prints one JSON object: {op: result}; exits 1 on error.
const OSS = require('ali-oss');
const crypto = require('crypto');
const [endpoint, bucket, accessKeyId, accessKeySecret, region, version] = process.argv.slice(2);
// Path-style on a host name the emulator answers: sldEnable keeps the bucket in the path, and a
// non-IP endpoint keeps ali-oss from replacing Host with <bucket>.oss-<region>.aliyuncs.com.
const client = new OSS({ endpoint, bucket, accessKeyId, accessKeySecret, region: `oss-${region}`,
  sldEnable: true, authorizationV4: version === 'v4', timeout: 20000 });
const data = Buffer.alloc(300 * 1024 + 3);
for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) % 251;  // the test recomputes this
const md5 = crypto.createHash('md5').update(data).digest('base64');
const P = `n-${version}/`;  // each signing version in its own folder
const out = {};
const assert = (cond, what) => { if (!cond) throw new Error(`check failed: ${what}`); };

(async () => {
  const put = await client.put(P + 'data.bin', data, { headers: { 'Content-MD5': md5 } });
  out.put = { status: put.res.status, crc64: put.res.headers['x-oss-hash-crc64ecma'] };
  const got = await client.get(P + 'data.bin');
  assert(Buffer.compare(got.content, data) === 0, 'get body');
  assert(got.res.headers['content-disposition'] === undefined, 'no invented Content-Disposition');
  out.get = { crc64: got.res.headers['x-oss-hash-crc64ecma'], md5: got.res.headers['content-md5'] };
  const head = await client.head(P + 'data.bin');
  out.head = { length: Number(head.res.headers['content-length']) };
  const range = await client.get(P + 'data.bin', { headers: { Range: 'bytes=10-19' } });
  assert(range.res.status === 206 && Buffer.compare(range.content, data.subarray(10, 20)) === 0, 'range');
  out.range = range.res.headers['content-range'];
  await client.copy(P + 'copy.bin', P + 'data.bin');
  out.copy = Buffer.compare((await client.get(P + 'copy.bin')).content, data) === 0;
  const v1 = await client.list({ prefix: P, 'max-keys': 1 });
  const v1next = await client.list({ prefix: P, marker: v1.nextMarker, 'max-keys': 1 });
  out.list = [v1.objects.map(o => o.name), v1.isTruncated, v1next.objects.map(o => o.name)];
  const v2 = await client.listV2({ prefix: P, 'max-keys': 10 });
  out.listV2 = v2.objects.map(o => o.name);
  const mp = await client.multipartUpload(P + 'multi.bin', data, { partSize: 100 * 1024, parallel: 2 });
  out.multipart = Buffer.compare((await client.get(P + 'multi.bin')).content, data) === 0 && mp.res.status === 200;
  const url = client.signatureUrl(P + 'data.bin', { expires: 60, response: { 'content-type': 'text/csv',
    'content-disposition': 'attachment' } });
  const signed = await fetch(url);
  out.presign = { status: signed.status, type: signed.headers.get('content-type'),
    disposition: signed.headers.get('content-disposition'), same: Buffer.compare(Buffer.from(await signed.arrayBuffer()), data) === 0 };
  const notModified = await client.get(P + 'data.bin', { headers: { 'If-None-Match': got.res.headers.etag } })
    .then(r => r.res.status, e => e.status);
  const failed = await client.get(P + 'data.bin', { headers: { 'If-Match': '"00"' } }).then(r => r.res.status, e => e.status);
  out.conditional = [notModified, failed];
  const first = await client.append(P + 'log.txt', Buffer.from('one,'));
  await client.append(P + 'log.txt', Buffer.from('two'), { position: first.nextAppendPosition });
  out.append = (await client.get(P + 'log.txt')).content.toString();
  await client.putObjectTagging(P + 'data.bin', { team: 'a' });
  out.tagging = (await client.getObjectTagging(P + 'data.bin')).tag;
  await client.deleteObjectTagging(P + 'data.bin');
  const init = await client.initMultipartUpload(P + 'partcopy.bin');
  const source = { sourceKey: P + 'data.bin', sourceBucketName: bucket };
  const p1 = await client.uploadPartCopy(P + 'partcopy.bin', init.uploadId, 1, `0-${200 * 1024 - 1}`, source);
  const p2 = await client.uploadPartCopy(P + 'partcopy.bin', init.uploadId, 2, `${200 * 1024}-${data.length - 1}`, source);
  await client.completeMultipartUpload(P + 'partcopy.bin', init.uploadId, [{ number: 1, etag: p1.etag }, { number: 2, etag: p2.etag }]);
  out.partCopy = Buffer.compare((await client.get(P + 'partcopy.bin')).content, data) === 0;
  const deleted = await client.deleteMulti([P + 'copy.bin', P + 'multi.bin'], { quiet: false });
  out.deleteMulti = deleted.deleted.map(d => d.Key).sort();
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e.stack || e); console.error(JSON.stringify({ code: e.code, status: e.status })); process.exit(1); });
