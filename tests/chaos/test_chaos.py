"""The chaos suite's accounting (`tally`), on made-up rows and dead letters:
each way a task can go missing or wrong must show in the figures."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos import Outcome, Published, tally  # noqa: E402

GOOD = {"share-a": "task-1", "share-b": "task-2", "share-c": "task-2"}  # task-2: a batch of two shares
POISON = {"poison-1": "bad-not-json.json"}
LETTER = {"x-chaos-id": "poison-1", "x-death-reason": "the body is not JSON"}


def counted(states, letters, overcounts=()):
    outcome = Outcome("w", published=2, poison=1)
    tally(outcome, Published(good=dict(GOOD), poison=dict(POISON)), states, letters, list(overcounts))
    return outcome


ALL_DONE = {"share-a": "completed", "share-b": "completed", "share-c": "completed"}


class Tally(unittest.TestCase):
    def figures(self, outcome):
        return outcome.succeeded, outcome.dead_lettered, outcome.lost, outcome.duplicates, outcome.wrong

    def test_everything_accounted_for(self):
        outcome = counted(ALL_DONE, [LETTER])
        self.assertEqual(self.figures(outcome), (2, 1, 0, 0, 0))
        self.assertTrue(outcome.ok())

    def test_a_share_without_a_row_is_lost_and_its_task_not_succeeded(self):
        outcome = counted({"share-a": "completed", "share-b": "completed"}, [LETTER])
        self.assertEqual(self.figures(outcome), (1, 1, 1, 0, 0))
        self.assertFalse(outcome.ok())

    def test_poison_without_a_dead_letter_is_lost(self):
        self.assertEqual(self.figures(counted(ALL_DONE, [])), (2, 0, 1, 0, 0))

    def test_a_good_task_failed_or_dead_lettered_is_wrong_once(self):
        letters = [LETTER, {"x-chaos-id": "task-1", "x-death-reason": "retries exhausted"}]
        outcome = counted({**ALL_DONE, "share-a": "failed"}, letters)
        self.assertEqual(self.figures(outcome), (1, 2, 0, 0, 1))

    def test_a_good_task_only_dead_lettered_is_wrong_not_lost(self):
        states = {"share-b": "completed", "share-c": "completed"}
        letters = [LETTER, {"x-chaos-id": "task-1", "x-death-reason": "retries exhausted"}]
        self.assertEqual(self.figures(counted(states, letters)), (1, 2, 0, 0, 1))

    def test_a_second_dead_letter_and_extra_embeddings_are_duplicates(self):
        outcome = counted(ALL_DONE, [LETTER, LETTER], ["share-a (4 rows, result counts 2)"])
        self.assertEqual(self.figures(outcome), (2, 2, 0, 2, 0))

    def test_a_dead_letter_without_a_reason_is_wrong(self):
        self.assertEqual(self.figures(counted(ALL_DONE, [{"x-chaos-id": "poison-1"}])), (2, 1, 0, 0, 1))


if __name__ == "__main__":
    unittest.main()
