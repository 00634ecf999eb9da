export { type AppOptions, createApp, type Latchkey } from "./app.js";
export { type Config, ConfigError, loadConfig } from "./config/load.js";
export { type Clock, ManualClock, systemClock } from "./domain/clock.js";
export { AuthError, type ErrorCode } from "./domain/errors.js";
