// What the load scripts share: the server's Node flags and the autocannon request loops
// for login and refresh.

/** The flags `npm start` runs the server with (packages/server/src/cli.ts says why). */
export const SERVER_NODE_FLAGS = ["--max-semi-space-size=8", "--no-parallel-scavenge"];

/**
 * Sign-ins over `accounts` accounts (bench-<i>@example.com) in turn: attempts in flight
 * count against the per-account limit until they succeed (a guard against parallel
 * guessing), and no real user signs in 16 times at once.
 */
export function loginRequests(accounts, password) {
  let next = 0;
  return [
    {
      method: "POST",
      path: "/auth/login",
      setupRequest: (req) => ({
        ...req,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ identifier: `bench-${next++ % accounts}@example.com`, password }),
      }),
    },
  ];
}

/**
 * Refreshes that walk each session's rotation chain one request at a time. autocannon
 * resets per-connection context, so the tokens live in `queue` (one per connection to
 * start with): a request takes one, its answer gives the successor back.
 */
export function refreshRequests(queue) {
  return [
    {
      method: "POST",
      path: "/auth/refresh",
      setupRequest: (req) => ({
        ...req,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refreshToken: queue.shift() }),
      }),
      onResponse: (status, body) => {
        if (status === 200) queue.push(JSON.parse(body).refreshToken);
      },
    },
  ];
}
