/** How long a tab without Web Locks waits for a peer's announced refresh before doing its own. */
const PEER_REFRESH_WAIT_MS = 10_000;

type Message = { type: "refreshing" } | { type: "refreshed"; ok: boolean };

/**
 * One refresh for many 401s. In this process concurrent callers share one promise; across
 * tabs the Web Locks API serialises refreshes, or, without it, a BroadcastChannel
 * announcement makes the others wait. `version` counts refreshes finished here or announced by
 * peers: a caller whose request went out before the latest one only needs to retry (or,
 * when that refresh was refused, to give up).
 *
 * Cross-tab coordination only saves work. It is never what keeps a session alive: the
 * server answers concurrent refreshes of one token inside its grace window with the same
 * successor (API.md, "Refresh rotation"), so a lost message costs one extra rotation.
 */
export class RefreshCoordinator {
  #version = 0;
  /** How the latest refresh ended: true, false (refused), or its error (unreachable, 423...). */
  #last: Promise<boolean> = Promise.resolve(true);
  #inflight: Promise<boolean> | undefined;
  /** The refresh or `serial` task last queued here: each starts when the one before settled. */
  #queue: Promise<unknown> = Promise.resolve();
  #channel: BroadcastChannel | undefined;
  #peerRefresh: { promise: Promise<void>; done: () => void } | undefined;

  constructor(
    private readonly name: string,
    crossTab: boolean,
  ) {
    if (!crossTab || typeof BroadcastChannel !== "function") return;
    this.#channel = new BroadcastChannel(name);
    // Node keeps the process alive for an open channel; a browser ignores this.
    (this.#channel as { unref?: () => void }).unref?.();
    this.#channel.onmessage = (event: MessageEvent<Message>) => this.#onPeer(event.data);
  }

  get version(): number {
    return this.#version;
  }

  /** Refreshes are serialised across tabs by Web Locks (browsers). */
  get sharesLocks(): boolean {
    return this.#channel !== undefined && webLocks() !== undefined;
  }

  /**
   * Resolves true when credentials newer than `seen` exist: someone refreshed since, or
   * `refresh` (run at most once at a time, here and across tabs) succeeded. A refresh
   * refused (the session is over) since `seen` answers false, one that failed rejects with
   * its error, without another try.
   */
  run(seen: number, refresh: () => Promise<boolean>): Promise<boolean> {
    if (this.#version > seen) return this.#last;
    this.#inflight ??= this.#exclusive(seen, refresh).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /**
   * Runs `task` once no refresh is in flight here or, with Web Locks, in another tab, and
   * keeps refreshes from starting until it is done. For cookie-mode sign-ins: the browser
   * keeps the last Set-Cookie, and an old session's refresh answered after a sign-in put
   * that session's cookies (or, refused, none) over the new session's.
   */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const locks = this.#channel ? webLocks() : undefined;
    // The lock's promise settles as the task's does (the DOM typings leave it wrapped).
    const locked = () => locks?.request(`${this.name}:refresh`, task) as Promise<T> | undefined;
    const result = this.#queue.then(() => locked() ?? task());
    this.#queue = result.catch(() => {});
    return result;
  }

  close(): void {
    this.#channel?.close();
    this.#peerRefresh?.done();
  }

  async #exclusive(seen: number, refresh: () => Promise<boolean>): Promise<boolean> {
    const step = async () => {
      if (this.#version > seen) return this.#last;
      this.#post({ type: "refreshing" });
      const ok = await refresh().catch((err: unknown) => {
        // The 401s from before this attempt share its failure (unreachable, 423, 5xx): each
        // starting its own refresh was a storm against a server refusing or in trouble.
        this.#settle(Promise.reject(err));
        this.#post({ type: "refreshed", ok: false });
        throw err;
      });
      this.#settle(Promise.resolve(ok));
      this.#post({ type: "refreshed", ok });
      return ok;
    };
    // Without Web Locks, a peer's announced refresh is waited for here instead.
    if (this.#peerRefresh && !this.sharesLocks) {
      await Promise.race([this.#peerRefresh.promise, delay(PEER_REFRESH_WAIT_MS)]);
      this.#peerRefresh = undefined; // a peer that closed mid-refresh never answers
      if (this.#version > seen) return this.#last;
    }
    return this.serial(step);
  }

  #onPeer(message: Message): void {
    if (message?.type === "refreshing" && !this.#peerRefresh) {
      let done = () => {};
      const promise = new Promise<void>((resolve) => {
        done = resolve;
      });
      this.#peerRefresh = { promise, done };
    } else if (message?.type === "refreshed") {
      // A peer's refused refresh may be its own trouble (an IP rule): this tab still tries.
      if (message.ok) this.#settle(Promise.resolve(true));
      this.#peerRefresh?.done();
      this.#peerRefresh = undefined;
    }
  }

  #settle(outcome: Promise<boolean>): void {
    outcome.catch(() => {}); // kept for later callers: no unhandled rejection meanwhile
    this.#version++;
    this.#last = outcome;
  }

  #post(message: Message): void {
    this.#channel?.postMessage(message);
  }
}

function webLocks(): LockManager | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManager } }).navigator;
  return nav?.locks;
}

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    (timer as { unref?: () => void }).unref?.();
  });
