/**
 * The seed's scenarios, end to end: the seed's client (`runSeedClient`), one scenario between real
 * processes (`runScenario`), the whole demo (`runDemo`), and the timeline with its terminal and HTML
 * renderers.
 */
export { attributeLockEvents, leaseOwners } from "./attribute.js";
export { auditEvents } from "./audit-events.js";
export { ClientProcess } from "./client-process.js";
export { BadPauseError, PauseTimeoutError, ScenarioError } from "./errors.js";
export {
  type Actor,
  byTime,
  type DemoEvent,
  type EventKind,
  eventFromJson,
  eventToJson,
  LANES,
  tokenText,
} from "./events.js";
export { LiveLog } from "./live.js";
export { type LockObserver, type ObserveOptions, observeLock } from "./lock-observer.js";
export {
  blockPause,
  DEFAULT_GARBAGE,
  gcPause,
  keypressPause,
  type PauseMode,
  type PauseResult,
  parsePause,
  pauseFlag,
  sigstopPause,
} from "./pause.js";
export { escapeXml, type HtmlScenario, renderHtml } from "./render-html.js";
export { renderTerminal, type TerminalOptions } from "./render-terminal.js";
export { liveLine, logLine } from "./report.js";
export { type DemoOptions, type DemoResult, type LockServiceChoice, runDemo } from "./run.js";
export { runScenario, type ScenarioOptions, type ScenarioResult } from "./scenario.js";
export { EXIT_CODES, runSeedClient, type SeedClientOptions } from "./seed-client.js";
export {
  type Arrow,
  buildTimeline,
  type Mark,
  type ScenarioName,
  type Span,
  type Timeline,
  type TimelineInput,
} from "./timeline.js";
export { type JudgedWrite, judge, judgeWrites, pairWrites, type Verdict, type WritePair } from "./verdict.js";
