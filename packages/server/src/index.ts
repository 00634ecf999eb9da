export { type AppOptions, createApp, type Latchkey } from "./app.js";
export { type Config, ConfigError, loadConfig } from "./config/load.js";
export { type Clock, ManualClock, systemClock } from "./domain/clock.js";
export { AuthError, type ErrorCode } from "./domain/errors.js";
export { createFunctionHandler, type FunctionRequest } from "./serverless/gcf.js";
export { appFromEnvironment, loadFunctionConfig } from "./serverless/instance.js";
export { createLambdaHandler, type LambdaHandler } from "./serverless/lambda.js";
