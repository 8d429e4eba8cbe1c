defmodule LiveCov.Test.ExUnitSummaryTest do
  use ExUnit.Case, async: true

  alias LiveCov.Test.ExUnitSummary

  test "Elixir 1.14-1.19 summaries" do
    assert ExUnitSummary.parse("..\nFinished in 0.1 seconds\n3 tests, 0 failures\n") == {3, 0}

    assert ExUnitSummary.parse("4 doctests, 467 tests, 46 failures, 1 skipped\n") == {471, 46}
    assert ExUnitSummary.parse("1 doctest, 1 test, 1 failure (2 excluded)\n") == {2, 1}
  end

  test "Elixir 1.20 summaries" do
    assert ExUnitSummary.parse("Finished in 1.3 seconds\n\nResult: 2 passed\n") == {2, 0}
    assert ExUnitSummary.parse("Result: 3/3 passed\n") == {3, 0}

    out = "Result: 445/460 passed (4/4 doctests, 441/456 tests), 14 invalid, 4 skipped\n"
    assert ExUnitSummary.parse(out <> "Failed: 15 tests\n") == {460, 15}
  end

  test "no summary" do
    assert ExUnitSummary.parse("** (CompileError) nope") == nil
  end
end
