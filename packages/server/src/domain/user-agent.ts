import { UAParser } from "ua-parser-js";

export interface Device {
  browser: string | null;
  os: string | null;
}

const MAX_USER_AGENT = 512;

/** Browser and OS names for the sessions list ("Firefox 128", "macOS 14"). */
export function describeDevice(userAgent: string | null): Device {
  if (!userAgent) return { browser: null, os: null };
  const result = new UAParser(userAgent.slice(0, MAX_USER_AGENT)).getResult();
  const label = (name?: string, version?: string) =>
    name ? [name, version?.split(".")[0]].filter(Boolean).join(" ") : null;
  return {
    browser: label(result.browser.name, result.browser.version),
    os: label(result.os.name, result.os.version),
  };
}
