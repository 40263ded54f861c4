// Fixture: the project's tests, plus one that tries to read a planted fake secret (reported).
const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const path = require("node:path");
const { add } = require("../index.js");

test("adds", () => {
  assert.strictEqual(add(2, 3), 5);
});

test("writes its own build output", () => {
  fs.mkdirSync(path.join(__dirname, "..", "dist"), { recursive: true });
  fs.writeFileSync(path.join(__dirname, "..", "dist", "out.txt"), "built");
});

test("tries the secret", () => {
  try {
    const text = fs.readFileSync(path.join(process.env.HOME, ".ssh", "id_rsa"), "utf8");
    console.log("SECRET-READ: " + text);
  } catch (err) {
    console.log("secret not readable: " + err.code);
  }
});
