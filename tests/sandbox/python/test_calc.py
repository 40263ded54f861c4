"""Fixture: the project's tests, plus one that tries to read a planted fake secret (reported)."""
import os
import unittest

from calc import add


class CalcTest(unittest.TestCase):
    def test_adds(self):
        self.assertEqual(add(2, 3), 5)

    def test_tries_the_secret(self):
        try:
            with open(os.path.join(os.environ["HOME"], ".ssh", "id_rsa")) as f:
                print("SECRET-READ: " + f.read())
        except OSError as err:
            print("secret not readable: %s" % err.strerror)


if __name__ == "__main__":
    unittest.main()
