defmodule LiveCov.Test.ExUnitSummary do
  @moduledoc """
  Reads the closing summary of a `mix test` run, in the format of each Elixir release:
  "3 tests, 0 failures" (maybe "1 doctest, 3 tests, 1 failure (2 excluded)") up to 1.19,
  "Result: 3 passed" when all passed, else "Result: 2/3 passed (...)" and "Failed: 1 test",
  from 1.20.
  """

  @doc "`{tests, failures}` of the last summary in `output`, or `nil` when there is none."
  def parse(output) do
    new = Regex.scan(~r/^Result: (\d+)(?:\/(\d+))? passed/m, output)
    old = Regex.scan(~r/^(?:(\d+) doctests?, )?(\d+) tests?, (\d+) failures?/m, output)

    cond do
      new != [] ->
        case List.last(new) do
          [_, passed] ->
            {String.to_integer(passed), 0}

          [_, passed, total] ->
            {String.to_integer(total), String.to_integer(total) - String.to_integer(passed)}
        end

      old != [] ->
        [_, doctests, tests, failures] = List.last(old)
        doctests = if doctests == "", do: 0, else: String.to_integer(doctests)
        {doctests + String.to_integer(tests), String.to_integer(failures)}

      true ->
        nil
    end
  end
end
