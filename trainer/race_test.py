"""The race rule on constructed validation curves (trainer/race.py); the
real Trainer's use of it: trainer/early_stopping_test.py."""
import types

from trainer import race


def _history(*aucs):
  return [{'epoch': k + 1, 'val_auc': auc} for k, auc in enumerate(aucs)]


def test_best_so_far_is_a_running_maximum_that_skips_nan():
  assert race.best_so_far(_history(0.7, 0.9, 0.6, float('nan'), 0.95)) == [
      0.7, 0.9, 0.9, 0.9, 0.95]
  assert race.best_so_far([]) == []


def test_behind_compares_at_the_same_epoch_from_the_first_raced_one():
  leader = [0.80, 0.90, 0.95]
  # Before `after_epochs` nobody stops, however far behind.
  assert not race.behind(0.10, leader, 1, after_epochs=2)
  assert race.behind(0.89, leader, 2, after_epochs=2)
  assert not race.behind(0.90, leader, 2, after_epochs=2)  # level: goes on
  assert not race.behind(0.91, leader, 2, after_epochs=2)
  # Past the leader's last epoch, its final best is the bar.
  assert race.behind(0.94, leader, 7, after_epochs=2)
  assert not race.behind(0.96, leader, 7, after_epochs=2)
  # 0 turns racing off; no leader, no race.
  assert not race.behind(0.0, leader, 5, after_epochs=0)
  assert not race.behind(0.0, [], 5, after_epochs=1)


def test_the_leader_is_the_highest_best_and_a_tie_keeps_the_first():
  contest = race.Race(2)
  contest.finish('a', _history(0.8, 0.9))
  contest.finish('b', _history(0.95, 0.7))
  assert (contest.leader, contest.leader_curve) == ('b', [0.95, 0.95])
  contest.finish('c', _history(0.5, 0.95))
  assert contest.leader == 'b'


def test_callback_stops_the_model_and_says_when():
  contest = race.Race(2)
  contest.finish('leader', _history(0.9, 0.95, 0.97))
  callback = contest.callback('challenger')
  model = types.SimpleNamespace(stop_training=False)
  callback.set_model(model)
  callback.on_epoch_end(0, {'val_auc': 0.5})  # epoch 1: not raced yet
  assert (model.stop_training, callback.stopped_at) == (False, None)
  callback.on_epoch_end(1, {'val_auc': 0.96})  # 0.96 >= 0.95: goes on
  assert (model.stop_training, callback.stopped_at) == (False, None)
  callback.on_epoch_end(2, {'val_auc': 0.90})  # best 0.96 < 0.97: stops
  assert (model.stop_training, callback.stopped_at) == (True, 3)


def test_the_first_architecture_is_never_raced():
  callback = race.Race(1).callback('first')
  model = types.SimpleNamespace(stop_training=False)
  callback.set_model(model)
  callback.on_epoch_end(4, {'val_auc': 0.0})
  assert (model.stop_training, callback.stopped_at) == (False, None)
