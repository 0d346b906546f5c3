// BullMQ worker for bench/: node worker.mjs CONCURRENCY  (env: BENCH_REDIS_URL,
// BENCH_STAMP_FILE, BENCH_START_FILE, BENCH_TASK_SLEEP, BENCH_VARIANT). Each job appends
// "<time> <id>\n" (the record format of bench/peerapps/__init__.py's stamp()) to the stamp
// file; with a sleep (the SIGKILL test), it first appends the same record to the start file.
// In a "results*" variant (bench/jobs.py) the job returns i + 1: BullMQ stores it as the
// job's returnvalue (completed jobs are kept by default).
import fs from "node:fs";
import { Worker } from "bullmq";
import IORedis from "ioredis";

const concurrency = Number(process.argv[2] || "1");
const sleep = Number(process.env.BENCH_TASK_SLEEP || "0");
const results = (process.env.BENCH_VARIANT || "").startsWith("results");
const fd = fs.openSync(process.env.BENCH_STAMP_FILE, "a");
const record = (i) => {
  const t = (performance.timeOrigin + performance.now()) / 1000;
  return `${t.toFixed(6).padStart(20, "0")} ${String(i).padStart(9, "0")}\n`;
};
const connection = new IORedis(process.env.BENCH_REDIS_URL, { maxRetriesPerRequest: null });
const opts = concurrency === 1 ? { connection } : { connection, concurrency };
new Worker(
  "bench",
  async (job) => {
    if (sleep > 0) {
      fs.appendFileSync(process.env.BENCH_START_FILE, record(job.data.i));
      await new Promise((r) => setTimeout(r, sleep * 1000));
    }
    fs.writeSync(fd, record(job.data.i));
    if (results) return job.data.i + 1;
  },
  opts,
);
