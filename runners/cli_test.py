"""The shared command line's Beam checks."""
from runners import cli

DASK = 'apache_beam.runners.dask.dask_runner.DaskRunner'


def test_dask_runner_is_refused_in_every_spelling_with_the_reason():
  for args in (['--runner=DaskRunner'], [f'--runner={DASK}'],
               ['--direct_num_workers=2', '--runner', DASK]):
    problems = cli.beam_problems(args)
    assert len(problems) == 1, args
    assert 'DaskRunner' in problems[0] and 'side inputs' in problems[0]
    assert 'DirectRunner' in problems[0]


def test_runners_that_can_run_the_pipeline_pass():
  for args in ([], ['--runner=DirectRunner'], ['--runner=FlinkRunner',
                                               '--flink_master=h:8081'],
               ['--runner=DataflowRunner'], ['--dask_client_address=x']):
    assert cli.beam_problems(args) == [], args
