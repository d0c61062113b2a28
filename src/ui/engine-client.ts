/** The page's handle on the engine worker (workers/engine.worker.ts): a comlink proxy of its LabSession. */
import * as Comlink from 'comlink';
import type { SessionListener } from '../app/protocol.ts';
import type { LabSession } from '../app/session.ts';

export type RemoteSession = Comlink.Remote<LabSession>;

export function startEngineWorker(listener: SessionListener): { session: RemoteSession; worker: Worker } {
  const worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'qlora-lab engine' });
  const session = Comlink.wrap<LabSession>(worker);
  void session.setListener(Comlink.proxy(listener));
  return { session, worker };
}
