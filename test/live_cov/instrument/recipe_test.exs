defmodule LiveCov.Instrument.RecipeTest do
  use ExUnit.Case, async: true

  alias LiveCov.Instrument.{Forms, Recipe}

  test "round trip: the compile info, the rewritten forms and the compile options" do
    forms = %Forms{
      module: :m,
      forms: [:dropped],
      binary: "x",
      main_file: ~c"m.erl",
      source: ~c"/m.erl"
    }

    munged = [{:attribute, 1, :module, :m}, {:BUMP, 3, 0}]

    assert {:ok, back, ^munged, [optimize: :full]} =
             forms |> Recipe.encode(munged, optimize: :full, cache: false) |> Recipe.decode()

    # The beam and the original forms are not kept: the recipe stays small.
    assert back == %{forms | forms: [], binary: nil}
  end

  test "anything else is not a recipe" do
    assert Recipe.decode("not a term") == :error
    assert Recipe.decode(:erlang.term_to_binary({:other, :shape})) == :error
    forms = %Forms{module: :m, forms: [], binary: nil, main_file: ~c"m.erl"}
    assert Recipe.decode(:erlang.term_to_binary({forms, :not_a_list, []})) == :error
  end
end
