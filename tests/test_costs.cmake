# Read by ctest after the discovered tests (tests/CMakeLists.txt adds it to TEST_INCLUDE_FILES
# last): the longest tests get a COST, their seconds on a quiet 2-core machine, so that
# `ctest -j` starts them first. Without it ctest runs the tests in the order they are
# declared, and the pipeline's dunnhumby tests, declared late, ran alone at the end of the
# run with the other core idle. A name that a build does not have (e.g. the tests skipped
# under the sanitizers) is passed over by ctest without a word; a stale figure only
# changes the order.
set(coupond_test_costs
  TrainJobTest.TrainedAucIsCloseToTheTruthsAuc 6
  AssignmentTest.SampledSearchNearLpOptimum 11
  AssignmentTest.NearLpOptimumWithBindingBudgetAndStock 11
  KernelTest.DotBlockMatchesReferenceOnEveryTarget 8
  StoreLifecycleTest.FiveHundredVersionsWithRetentionKeepFdsDiskAndPollTimeFlat 15
  ServerIntegrationTest.ReloadsFiftyVersionsUnderTrafficWithoutAFailedRequest 8
  LmfTrainerTest.ColdCouponsAreScoredThroughTheirAttributes 8
  LmfTrainerTest.MultithreadedReachesComparableAuc 7
  AssignmentTest.ProportionalScoresAtScaleReachTheBudgetBound 6
  ScoreTopKTest.MatchesReferenceForAllAndListedRowsOnEveryTarget 6
  CollectorIntegrationTest.ThousandCandidateDecisionsAllReachCollectordWithDefaultLimits 5)
# The add_test tests (DunnhumbyPipelineTest, ClosedLoopTest, PrometheusTest, AssignMemoryTest,
# DecisionLogSoakTest) get their COST where tests/CMakeLists.txt declares them: this file is
# read before their add_test, and a property set on a test not yet declared is lost.
list(LENGTH coupond_test_costs n)
math(EXPR last "${n} - 1")
foreach(i RANGE 0 ${last} 2)
  math(EXPR j "${i} + 1")
  list(GET coupond_test_costs ${i} test_name)
  list(GET coupond_test_costs ${j} seconds)
  set_tests_properties("${test_name}" PROPERTIES COST ${seconds})
endforeach()
