// Latchkey's default Argon2id parameters (packages/server/src/config/schema.ts), for the
// scripts that hash outside the server: the raw loop and the login floor.
import { Algorithm } from "@node-rs/argon2";

export const ARGON2_PARAMS = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
};
