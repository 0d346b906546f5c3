// BullMQ producer for bench/: node enqueue.mjs N  (env: BENCH_REDIS_URL). Adds jobs 0..N-1
// with the default job options, 50 per addBulk call; prints how many it added.
import { Queue } from "bullmq";
import IORedis from "ioredis";

const n = Number(process.argv[2]);
const connection = new IORedis(process.env.BENCH_REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue("bench", { connection });
for (let i = 0; i < n; i += 50) {
  const jobs = [];
  for (let j = i; j < Math.min(n, i + 50); j++) jobs.push({ name: "noop", data: { i: j } });
  await queue.addBulk(jobs);
}
await queue.close();
await connection.quit();
console.log(n);
