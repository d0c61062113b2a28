/**
 * The engine worker: every GPU operation of the app runs here, behind comlink, so the page's main
 * thread only draws. The page talks to one LabSession.
 */
import * as Comlink from 'comlink';
import { LabSession } from '../src/app/session.ts';

Comlink.expose(new LabSession());
