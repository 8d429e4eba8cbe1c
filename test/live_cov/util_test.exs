defmodule LiveCov.UtilTest do
  use ExUnit.Case, async: true

  alias LiveCov.Util

  doctest LiveCov.Util

  describe "map_ok/2" do
    test "keeps the order and stops at the first failure" do
      assert Util.map_ok([], fn _ -> flunk("not called") end) == {:ok, []}
      assert Util.map_ok(1..3, &{:ok, {&1}}) == {:ok, [{1}, {2}, {3}]}

      me = self()

      assert Util.map_ok([1, 2, 3], fn
               2 -> :error
               i -> send(me, i) && {:ok, i}
             end) == :error

      assert_received 1
      refute_received 3
    end
  end

  describe "ETS reads" do
    test "answer [] when the table does not exist" do
      assert Util.ets_lookup(:live_cov_util_test_no_table, :k) == []
      assert Util.ets_match_object(:live_cov_util_test_no_table, :_) == []
      assert Util.ets_tab2list(:live_cov_util_test_no_table) == []
    end

    test "read an existing table" do
      t = :ets.new(:live_cov_util_test, [:set, :private])
      :ets.insert(t, [{:a, 1}, {:b, 2}])
      assert Util.ets_lookup(t, :a) == [{:a, 1}]
      assert Util.ets_match_object(t, {:_, 2}) == [{:b, 2}]
      assert Enum.sort(Util.ets_tab2list(t)) == [{:a, 1}, {:b, 2}]
    end
  end
end
