// Fixture: a tiny module under test.
exports.add = (a, b) => a + b;
