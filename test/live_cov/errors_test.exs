defmodule LiveCov.ErrorsTest do
  use ExUnit.Case, async: true
  doctest LiveCov.Errors

  alias LiveCov.Errors

  @root Path.expand("../..", __DIR__)

  # Tuples shaped like errors that are not error kinds (config values, internal steps) and
  # atoms the NIF returns as values (`nil`, `:reset` of counts_sub/2).
  @not_kinds ~w(system retry mkdir write rename error ok nil reset)a

  # Every `{:error, {:kind, ...}}` and `{:kind, "message"}` of lib/, and every kind the NIF's
  # Rust errors name.
  defp kinds_in_code do
    elixir =
      for file <- Path.wildcard(Path.join(@root, "lib/**/*.ex")),
          text = File.read!(file),
          re <- [~r/\{:error,\s*\{:([a-z_0-9]+)\s*,/, ~r/\{:([a-z_0-9]+),\s*\n?\s*"/],
          [_, kind] <- Regex.scan(re, text),
          do: String.to_atom(kind)

    rust =
      for file <- Path.wildcard(Path.join(@root, "native/*/src/**/*.rs")),
          text = File.read!(file),
          re <- [~r/=> "([a-z_]+)",/, ~r/atoms! \{([a-z_, ]+)\}/],
          [_, names] <- Regex.scan(re, text),
          kind <- String.split(names, [",", " "], trim: true),
          do: String.to_atom(kind)

    Enum.uniq(elixir ++ rust) -- @not_kinds
  end

  test "the catalogue lists every kind the code returns" do
    missing = Enum.reject(kinds_in_code(), &Errors.known?/1)
    assert missing == [], "not in LiveCov.Errors: #{inspect(Enum.sort(missing))}"
  end

  test "every kind has a status and a meaning" do
    for {kind, {status, meaning}} <- Errors.kinds() do
      assert status in 400..599, inspect(kind)
      assert is_binary(meaning) and meaning != "", inspect(kind)
    end

    assert Errors.status(:no_such_kind) == 500
    assert Errors.meaning(:no_such_kind) == nil
  end

  test "the agent and the gateway answer with the catalogue's statuses" do
    for kind <- [:unauthorized, :not_found, :invalid_option, :conflict, :timeout, :no_beam] do
      assert LiveCov.Agent.Router.status_of(kind) == Errors.status(kind)
      assert LiveCov.Gateway.Router.status_of(kind) == Errors.status(kind)
    end
  end

  test "error/2 builds the tuple and refuses kinds it does not list" do
    assert Errors.error(:timeout, "too slow") == {:error, {:timeout, "too slow"}}
    assert_raise ArgumentError, ~r/not an error kind/, fn -> Errors.error(:nope, "x") end
    assert_raise ArgumentError, fn -> Errors.error(:timeout, "") end
  end
end
