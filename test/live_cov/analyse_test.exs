defmodule LiveCov.AnalyseTest do
  use ExUnit.Case, async: true

  alias LiveCov.{Analyse, ModuleInfo}

  # Two functions: f/1 with two clauses (lines 3,4 and 6), g/0 at line 8, plus a generated
  # function at line 0; f/1's clause 2 shares line 4 with clause 1 as a duplicate line entry.
  @sites {{:f, 1, 1, 3}, {:f, 1, 1, 4}, {:f, 1, 2, 4}, {:f, 1, 2, 6}, {:g, 0, 1, 8},
          {:__info__, 1, 1, 0}}
  @counts [5, 4, 2, 2, 0, 7]

  defp info, do: ModuleInfo.new(module: :m, slot: 0, md5: <<0::128>>, sites: @sites)

  if LiveCov.Runtime.generation() == :otp25 do
    test "line level (OTP 25): one entry per site, sorted, duplicates kept" do
      assert Analyse.cover(info(), @counts, :calls, :line) ==
               [
                 {{:m, 0}, 7},
                 {{:m, 3}, 5},
                 {{:m, 4}, 2},
                 {{:m, 4}, 4},
                 {{:m, 6}, 2},
                 {{:m, 8}, 0}
               ]

      assert Analyse.cover(info(), @counts, :coverage, :line)
             |> Enum.count(&(elem(&1, 1) == {0, 1})) ==
               1
    end
  else
    test "line level (OTP 27+): one entry per line, calls summed, covered when any site ran" do
      assert Analyse.cover(info(), @counts, :calls, :line) ==
               [{{:m, 0}, 7}, {{:m, 3}, 5}, {{:m, 4}, 6}, {{:m, 6}, 2}, {{:m, 8}, 0}]

      assert Analyse.cover(info(), [5, 0, 2, 2, 0, 7], :coverage, :line) ==
               [{{:m, 0}, {1, 0}}, {{:m, 3}, {1, 0}}, {{:m, 4}, {1, 0}}, {{:m, 6}, {1, 0}}] ++
                 [{{:m, 8}, {0, 1}}]

      assert Analyse.cover(info(), [5, 0, 0, 2, 0, 7], :coverage, :line)
             |> List.keyfind({:m, 4}, 0) == {{:m, 4}, {0, 1}}
    end
  end

  test "clause, function and module levels follow cover's rules" do
    assert Analyse.cover(info(), @counts, :calls, :clause) == [
             {{:m, :__info__, 1, 1}, 7},
             {{:m, :f, 1, 1}, 5},
             {{:m, :f, 1, 2}, 2},
             {{:m, :g, 0, 1}, 0}
           ]

    assert Analyse.cover(info(), @counts, :coverage, :function) == [
             {{:m, :__info__, 1}, {1, 0}},
             {{:m, :f, 1}, {4, 0}},
             {{:m, :g, 0}, {0, 1}}
           ]

    assert Analyse.cover(info(), @counts, :calls, :module) == {:m, 14}
    assert Analyse.cover(info(), @counts, :coverage, :module) == {:m, {5, 1}}
    empty = ModuleInfo.new(module: :m, slot: 0, md5: <<0::128>>, sites: {})
    assert Analyse.cover(empty, [], :calls, :module) == {:m, {0, 0}}
  end

  test "report lines take the largest count on a line and drop line 0" do
    assert Analyse.lines(info(), @counts) == %{3 => 5, 4 => 4, 6 => 2, 8 => 0}
  end

  test "function counts sum the clauses' entries" do
    assert Analyse.functions(info(), @counts) == [{"f/1", 3, 7}, {"g/0", 8, 0}]
  end
end
