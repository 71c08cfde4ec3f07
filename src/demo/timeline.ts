/**
 * The timeline model: turns a scenario's events into what both renderers draw — lanes, spans (a
 * lease held, a lease a client still believes in after it expired, a pause, a wait), marks (grants,
 * expiry, storage answers) and arrows (the lock handed to a client, writes to the storage). Pure; times
 * are milliseconds since the scenario started.
 */
import { leaseOwners } from "./attribute.js";
import { type Actor, byTime, type DemoEvent, LANES, tokenText } from "./events.js";
import { pairWrites, type Verdict } from "./verdict.js";

/** The two scenarios of the article. */
export type ScenarioName = "unsafe" | "fenced";

/** A stretch of time on one lane. */
export interface Span {
  lane: Actor;
  /** `lease`: holds the lock; `stale`: believes it holds it, but its lease expired; `pause`: stopped. */
  kind: "lease" | "stale" | "pause" | "waiting";
  fromMs: number;
  toMs: number;
  label: string;
  token?: bigint;
}

/** A moment on one lane. */
export interface Mark {
  lane: Actor;
  kind: "granted" | "queued" | "expired" | "released" | "accepted" | "refused" | "error";
  atMs: number;
  label: string;
  token?: bigint | null;
}

/** A message between lanes: the lock service handing a client the lock, or a client's write. */
export interface Arrow {
  kind: "grant" | "write";
  from: Actor;
  to: Actor;
  fromMs: number;
  toMs: number;
  label: string;
  token?: bigint | null;
  /** For writes: the storage's answer. */
  accepted?: boolean;
}

/** Everything a renderer needs for one scenario. */
export interface Timeline {
  scenario: ScenarioName;
  title: string;
  /** One line on what the scenario does, e.g. which pause and which lock service. */
  setup: string;
  durationMs: number;
  /**
   * Epoch ms of time zero: the scenario's start (its `scenario` event, else `startMs`), the same origin
   * as the terminal's live `+N.NNN s` lines, so a time on the page and in the terminal agree.
   */
  originMs: number;
  lanes: readonly Actor[];
  spans: Span[];
  marks: Mark[];
  arrows: Arrow[];
  verdict: Verdict;
}

/** What `buildTimeline` needs besides the events. */
export interface TimelineInput {
  scenario: ScenarioName;
  setup: string;
  /** Epoch ms the scenario started; time zero unless the events hold the scenario's `scenario` event. */
  startMs: number;
  /** Events with the lock service's already attributed (see `attributeLockEvents`). */
  events: readonly DemoEvent[];
  verdict: Verdict;
}

const TITLES: Record<ScenarioName, string> = {
  unsafe: "Unsafe: a lease-based lock without fencing",
  fenced: "Fenced: the storage checks fencing tokens",
};

const PAUSE_LABELS: Record<string, string> = {
  sigstop: "frozen by SIGSTOP",
  keypress: "stopped reading a key",
  gc: "stopped by GC",
  block: "event loop blocked",
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Builds the timeline of one scenario. Pure. */
export function buildTimeline(input: TimelineInput): Timeline {
  const sorted = byTime(input.events);
  const originMs = sorted.find((e) => e.actor === "demo" && e.kind === "scenario")?.timeMs ?? input.startMs;
  const events = sorted.map((e) => ({ ...e, timeMs: e.timeMs - originMs }));
  const owners = leaseOwners(input.events);
  const end = events.reduce((max, e) => Math.max(max, e.timeMs), 0);
  const spans: Span[] = [];
  const marks: Mark[] = [];
  const arrows: Arrow[] = [];

  for (const client of ["client 1", "client 2"] as const) {
    const own = events.filter((e) => e.actor === client);
    const leaseId = own.find((e) => e.leaseId !== undefined)?.leaseId;
    const after = (kind: DemoEvent["kind"], from: number, actor: Actor = client) =>
      events.find((e) => e.actor === actor && e.kind === kind && e.timeMs >= from);
    const lastOwn = own.length > 0 ? (own[own.length - 1] as DemoEvent).timeMs : end;

    const waiting = own.find((e) => e.kind === "waiting");
    const acquired = own.find((e) => e.kind === "acquired");
    if (waiting) {
      spans.push({
        lane: client,
        kind: "waiting",
        fromMs: waiting.timeMs,
        toMs: acquired?.timeMs ?? lastOwn,
        label: "",
      });
    }
    if (acquired && typeof acquired.token === "bigint") {
      const token = acquired.token;
      const granted = events.find(
        (e) => e.actor === "lock service" && e.kind === "granted" && e.leaseId === leaseId,
      );
      arrows.push({
        kind: "grant",
        from: "lock service",
        to: client,
        fromMs: Math.min(granted?.timeMs ?? acquired.timeMs, acquired.timeMs),
        toMs: acquired.timeMs,
        label: `lock, token ${token}`,
        token,
      });
      const expired = events.find(
        (e) => e.actor === "lock service" && e.kind === "expired" && e.leaseId === leaseId,
      );
      const released = after("unlock", acquired.timeMs);
      const leaseEnd = Math.min(expired?.timeMs ?? lastOwn, released?.timeMs ?? lastOwn);
      spans.push({
        lane: client,
        kind: "lease",
        fromMs: acquired.timeMs,
        toMs: leaseEnd,
        label: `holds lock, token ${token}`,
        token,
      });
      if (expired && expired.timeMs < (released?.timeMs ?? lastOwn)) {
        spans.push({
          lane: client,
          kind: "stale",
          fromMs: expired.timeMs,
          toMs: released?.timeMs ?? lastOwn,
          label: `lease expired; still thinks it holds token ${token}`,
          token,
        });
      }
    }

    const pause = own.find((e) => e.kind === "pause");
    const resumed = own.find((e) => e.kind === "resumed");
    if (pause && resumed) {
      const frozen = events.find(
        (e) => e.actor === "demo" && e.kind === "freeze" && e.timeMs >= pause.timeMs,
      );
      const from = frozen && frozen.timeMs <= resumed.timeMs ? frozen.timeMs : pause.timeMs;
      const pausedMs = resumed.pausedMs ?? resumed.timeMs - from;
      spans.push({
        lane: client,
        kind: "pause",
        fromMs: from,
        toMs: resumed.timeMs,
        label: `${PAUSE_LABELS[pause.mode ?? ""] ?? "paused"} ${seconds(pausedMs)}`,
      });
    }

    for (const e of own) {
      if (e.kind === "error") marks.push({ lane: client, kind: "error", atMs: e.timeMs, label: e.what });
    }
  }

  for (const e of events) {
    if (e.actor !== "lock service") continue;
    const owner = owners.get(e.leaseId ?? "") ?? `lease ${e.leaseId ?? "?"}`;
    if (e.kind === "granted") {
      const end = events.find(
        (x) =>
          x.actor === "lock service" &&
          (x.kind === "expired" || x.kind === "released") &&
          x.leaseId === e.leaseId &&
          x.timeMs >= e.timeMs,
      );
      spans.push({
        lane: "lock service",
        kind: "lease",
        fromMs: e.timeMs,
        toMs: end?.timeMs ?? events[events.length - 1]?.timeMs ?? e.timeMs,
        label: `${owner}'s lease, token ${tokenText(e.token)}`,
        token: typeof e.token === "bigint" ? e.token : undefined,
      });
    }
    const short = {
      granted: `lock granted to ${owner}`,
      queued: `${owner} queued`,
      expired: `${owner}'s lease expired`,
      released: `${owner} released the lock`,
    } as const;
    if (e.kind === "granted" || e.kind === "queued" || e.kind === "expired" || e.kind === "released") {
      marks.push({
        lane: "lock service",
        kind: e.kind,
        atMs: e.timeMs,
        label: short[e.kind],
        token: e.token,
      });
    }
  }
  for (const { send, answer } of pairWrites(events)) {
    const accepted = answer.kind === "stored";
    const token = answer.token ?? null;
    if (send) {
      arrows.push({
        kind: "write",
        from: send.actor,
        to: "storage",
        fromMs: Math.min(send.timeMs, answer.timeMs),
        toMs: answer.timeMs,
        label: token === null ? "write, no token" : `write, token ${token}`,
        token,
        accepted,
      });
    }
    const max = answer.maxToken === null || answer.maxToken === undefined ? "" : ` < ${answer.maxToken}`;
    marks.push({
      lane: "storage",
      kind: accepted ? "accepted" : "refused",
      atMs: answer.timeMs,
      label: accepted ? `accepted (${send?.actor ?? "?"})` : `refused: token ${tokenText(token)}${max}`,
      token,
    });
  }

  return {
    scenario: input.scenario,
    title: TITLES[input.scenario],
    setup: input.setup,
    durationMs: Math.max(end, 1),
    originMs,
    lanes: LANES,
    spans,
    marks,
    arrows,
    verdict: input.verdict,
  };
}
