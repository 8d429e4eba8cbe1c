defmodule LiveCov.Test.ErlSource do
  @moduledoc "Erlang source text to abstract forms, for tests of the instrumentation passes."

  @doc "The forms of `source` (one or more forms, each ending with a dot)."
  def forms(source) do
    {:ok, tokens, _} = :erl_scan.string(String.to_charlist(source))

    tokens
    |> Enum.chunk_while(
      [],
      fn
        {:dot, _} = dot, acc -> {:cont, Enum.reverse([dot | acc]), []}
        token, acc -> {:cont, [token | acc]}
      end,
      fn acc -> {:cont, acc} end
    )
    |> Enum.reject(&(&1 == []))
    |> Enum.map(fn form_tokens ->
      {:ok, form} = :erl_parse.parse_form(form_tokens)
      form
    end)
  end

  @doc "The single form of `source`."
  def form(source) do
    [form] = forms(source)
    form
  end
end
