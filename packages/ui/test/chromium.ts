import { existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContextOptions, chromium, type Page } from "playwright-core";

/** Debian's Chromium; CI installs it with apt. A missing browser fails the suite, never skips it. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../../../test-artifacts/ui", import.meta.url));
const UI_BUILD = fileURLToPath(new URL("../dist/index.html", import.meta.url));

/** One Chromium for a test file: fresh profiles on demand, and what their pages got wrong. */
export interface Chromium {
  /** Script errors and CSP violations ("Refused to …"): the pages must cause none. */
  problems: string[];
  /** A page in a fresh profile (cookies, storage and authenticators of its own). */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  close(): Promise<void>;
}

/** Chromium for the browser suite; `args` adds to the flags every run needs. */
export async function launchChromium(args: string[] = []): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: apt-get install -y chromium`);
  }
  if (!existsSync(UI_BUILD)) throw new Error("The pages are not built: npm run build");
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", ...args],
  });
  const problems: string[] = [];
  return {
    problems,
    async newPage(options) {
      const page = await (await browser.newContext(options)).newPage();
      watchProblems(page, problems);
      return page;
    },
    // Closing the browser closes every profile it opened.
    close: () => browser.close(),
  };
}

function watchProblems(page: Page, problems: string[]): void {
  page.on("console", (m) => {
    // Chromium logs every 4xx answer as a failed load; the tests assert those outcomes
    // themselves (a 401 cured by a refresh, the 403 that asks for step-up).
    if (m.type() === "error" && !/^Failed to load resource: the server responded/.test(m.text())) {
      problems.push(m.text());
    }
  });
  page.on("pageerror", (err) => problems.push(err.message));
}

export const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
