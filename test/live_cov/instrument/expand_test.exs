defmodule LiveCov.Instrument.ExpandTest do
  use ExUnit.Case, async: true

  alias LiveCov.Instrument.Expand
  alias LiveCov.Test.ErlSource

  test "a form without andalso/orelse in a body comes back as it is" do
    for source <- [
          "f(A) -> [X || X <- A, X > 1].",
          "f(A, B) when A andalso B; A orelse B -> {A, \"a string\", 1.5, $c}.",
          "f(L) -> [X || X <- L, is_integer(X) andalso X > 0]."
        ] do
      form = ErlSource.form(source)
      assert Expand.form(form) === form
    end
  end

  test "operators in bodies are rewritten, wherever they sit" do
    form = ErlSource.form("f(A, B) -> {ok, [A orelse B]}.")
    {:function, _, :f, 2, [{:clause, _, _, [], [body]}]} = Expand.form(form)

    assert {:tuple, _, [{:atom, _, :ok}, {:cons, _, {:case, _, {:var, _, :A}, clauses}, _}]} =
             body

    assert [{:clause, _, [{:atom, _, true}], [], [{:atom, _, true}]}, _false, _error] = clauses

    # A filter that is not a guard test is a body expression.
    form = ErlSource.form("f(L, P) -> [X || X <- L, P(X) andalso X > 0].")

    {:function, _, :f, 2, [{:clause, _, _, [], [{:lc, _, _, [_gen, filter]}]}]} =
      Expand.form(form)

    assert {:case, _, {:call, _, {:var, _, :P}, _}, _} = filter
  end

  test "the auxiliary variable skips names the form already uses" do
    form = ErlSource.form("f(_1, B) -> _1 andalso B.")

    {:function, _, :f, 2, [{:clause, _, _, [], [{:case, _, _, [_, _, error]}]}]} =
      Expand.form(form)

    assert {:clause, _, [{:var, _, :_2}], [], _} = error
  end
end
