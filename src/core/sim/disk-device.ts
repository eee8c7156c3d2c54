// The guest's disk-tier device in the simulator (docs/controller.md, "The disk-tier device"): one throttled device
// shared by every read in flight, tasks reading a segment from the disk tier and the tier's background promotion
// copies alike. A fluid fair-share server: k reads in flight each get 1/k of the device's bandwidth, the bandwidth
// being the smaller of the byte limit and the operation limit times the bytes per operation (blkio / io.max
// throttling of the guest's cgroup limits both). Time is virtual like the CPU server's: W is the bytes each read in
// flight has received since t = 0, so the next read to finish is the heap's smallest W + bytes.
import { MinHeap } from './ps-server.js';

/** Bytes one read operation carries when the bench does not say: Linux's default readahead window (read_ahead_kb). */
export const DEFAULT_REQUEST_BYTES = 128 * 1024;

export interface DeviceConfig {
  /** Read bandwidth the device gives the guest (bytes/s): blkio.throttle.read_bps_device, io.max rbps. */
  readBytesPerS: number;
  /** Read operations per second (blkio.throttle.read_iops_device, io.max riops); 0 = no operation limit. */
  readIops: number;
  /** Bytes per read operation (bytes); default DEFAULT_REQUEST_BYTES. */
  requestBytes?: number;
}

/** The device's effective read bandwidth (bytes/s): the byte limit, or the operation limit if that binds first. */
export function deviceBytesPerS(d: DeviceConfig): number {
  const perOp = d.requestBytes ?? DEFAULT_REQUEST_BYTES;
  return d.readIops > 0 ? Math.min(d.readBytesPerS, d.readIops * perOp) : d.readBytesPerS;
}

export class DiskDevice {
  /** Virtual time: bytes each read in flight has received. */
  private W = 0;
  private readonly heap = new MinHeap();
  /** Bandwidth (bytes/s) shared by the reads in flight. */
  readonly bytesPerS: number;
  /** Time (s) with at least one read in flight, and bytes read in all. */
  busyS = 0;
  bytesRead = 0;

  constructor(cfg: DeviceConfig) {
    this.bytesPerS = deviceBytesPerS(cfg);
  }

  get active(): number {
    return this.heap.size;
  }

  /** Bytes/s each read in flight receives now (the fair share). */
  rate(): number {
    return this.heap.size > 0 ? this.bytesPerS / this.heap.size : 0;
  }

  /** When the next read finishes, from time t (Infinity when idle). */
  nextDone(t: number): number {
    return this.heap.size > 0 ? Math.max(t, t + (this.heap.minKey - this.W) / this.rate()) : Infinity;
  }

  /** Let dt seconds pass at the current share. */
  advance(dt: number): void {
    if (this.heap.size === 0 || dt <= 0) return;
    this.W += this.rate() * dt;
    this.busyS += dt;
    this.bytesRead += this.bytesPerS * dt;
  }

  /** A read of `bytes` starts now; `id` comes back from pop() when it is done. */
  add(id: number, bytes: number): void {
    this.heap.push(this.W + Math.max(0, bytes), id);
  }

  /** Remove the read that finishes first and return its id. */
  pop(): number {
    return this.heap.pop();
  }
}
