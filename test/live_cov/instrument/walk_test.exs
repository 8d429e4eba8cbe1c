defmodule LiveCov.Instrument.WalkTest do
  use ExUnit.Case, async: true

  alias LiveCov.Instrument.Walk
  alias LiveCov.Test.ErlSource

  defp call_to?(name) do
    fn
      {:call, _, {:atom, _, ^name}, _} -> true
      _ -> :descend
    end
  end

  test "finds a node anywhere: nested tuples, lists, maps, funs" do
    form = ErlSource.form(~S"f(X) -> [#{a => fun() -> {ok, [g(X)]} end}].")
    assert Walk.any?(form, call_to?(:g))
    refute Walk.any?(form, call_to?(:h))
    assert Walk.any?([:x, {:y, [form]}], call_to?(:g))
  end

  test "false from the visitor skips the subtree; literal leaves are never visited" do
    form = ErlSource.form("f(X) -> g(X).")

    skip_clauses = fn
      {:clause, _, _, _, _} -> false
      {:call, _, _, _} -> true
      _ -> :descend
    end

    refute Walk.any?(form, skip_clauses)

    visited = :ets.new(:visited, [:bag, :public])

    Walk.any?(form, fn node ->
      :ets.insert(visited, {elem(node, 0)})
      :descend
    end)

    kinds = visited |> :ets.tab2list() |> Enum.map(&elem(&1, 0)) |> Enum.uniq()
    assert :call in kinds and :function in kinds
    refute :var in kinds or :atom in kinds
  end

  test "anything else is no match" do
    refute Walk.any?(42, fn _ -> true end)
    refute Walk.any?("binary", fn _ -> true end)
    refute Walk.any?([], fn _ -> true end)
  end

  test "replace_markers rewrites every marker of a tag, never attributes" do
    forms = [
      {:attribute, 1, :x, {:BUMP, 1, 0}},
      {:function, 2, :f, 0,
       [{:clause, 2, [], [], [{:BUMP, 3, 0}, {:atom, 3, :ok}, {:BUMP, 4, 1}]}]}
    ]

    replaced = Walk.replace_markers(forms, :BUMP, fn line, i -> {:integer, line, i} end)

    assert replaced == [
             {:attribute, 1, :x, {:BUMP, 1, 0}},
             {:function, 2, :f, 0,
              [{:clause, 2, [], [], [{:integer, 3, 0}, {:atom, 3, :ok}, {:integer, 4, 1}]}]}
           ]

    assert Walk.replace_markers(forms, :other, fn _, _ -> :never end) == forms
  end
end
