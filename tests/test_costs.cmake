# Read by ctest after the discovered suites (tests/CMakeLists.txt adds it to
# TEST_INCLUDE_FILES last): the longest suites (one CTest test each, discover_suites.cmake)
# get a COST, about their seconds on a quiet 2-core machine, so that
# `ctest -j` starts them first. Without it ctest runs the tests in the order they are
# declared, and the pipeline's dunnhumby tests, declared late, ran alone at the end of the
# run with the other core idle. A name that a build does not have (e.g. the tests skipped
# under the sanitizers) is passed over by ctest without a word; a stale figure only
# changes the order.
set(coupond_test_costs
  DunnhumbyPipelineTest 45
  AssignmentTest 20
  CollectorIntegrationTest 18
  StoreLifecycleTest 15
  ServerIntegrationTest 11
  HostileClientTest 9
  KernelTest 8
  LmfTrainerTest 8
  DunnhumbyTest 7
  TrainJobTest 6
  ScoreTopKTest 6
  ModelStoreTest 4)
# The add_test tests (ClosedLoopTest, PrometheusTest, AssignMemoryTest, DecisionLogSoakTest)
# get their COST where tests/CMakeLists.txt declares them: this file is read before their
# add_test, and a property set on a test not yet declared is lost.
list(LENGTH coupond_test_costs n)
math(EXPR last "${n} - 1")
foreach(i RANGE 0 ${last} 2)
  math(EXPR j "${i} + 1")
  list(GET coupond_test_costs ${i} test_name)
  list(GET coupond_test_costs ${j} seconds)
  set_tests_properties("${test_name}" PROPERTIES COST ${seconds})
endforeach()
