defmodule LiveCov.Prune.Options do
  @moduledoc false
  # The options of adaptive coverage (`prune: [...]` of `LiveCov.start/2`, `LiveCov.Prune.configure/1`):
  # their defaults and their validation.

  @option_keys [:interval, :retry, :max_per_pass, :concurrency, :keep_instrumented, :history]

  @doc "The defaults, as a map."
  def defaults do
    %{
      interval: 5_000,
      retry: 1_000,
      max_per_pass: 50,
      concurrency: max(1, div(System.schedulers_online(), 2)),
      keep_instrumented: false,
      history: 200
    }
  end

  @doc false
  @spec validate(term) :: {:ok, keyword} | {:error, {atom, String.t()}}
  def validate(opts) when is_list(opts) do
    if Keyword.keyword?(opts) do
      LiveCov.Util.map_ok(opts, fn {k, v} -> with :ok <- check(k, v), do: {:ok, {k, v}} end)
    else
      invalid("prune options must be a keyword list, got: #{inspect(opts)}")
    end
  end

  def validate(opts), do: invalid("prune options must be a keyword list, got: #{inspect(opts)}")

  defp check(:interval, v) when v == nil or (is_integer(v) and v > 0), do: :ok

  defp check(k, v) when k in [:retry, :max_per_pass, :concurrency] and is_integer(v) and v > 0,
    do: :ok

  defp check(:history, v) when is_integer(v) and v >= 0, do: :ok
  defp check(:keep_instrumented, v) when is_boolean(v), do: :ok

  defp check(k, v) when k in @option_keys do
    invalid(
      "prune option #{inspect(k)} got #{inspect(v)}: :interval takes milliseconds or nil, " <>
        ":retry/:max_per_pass/:concurrency positive integers, :history a non-negative integer, " <>
        ":keep_instrumented a boolean"
    )
  end

  defp check(k, _v),
    do: invalid("unknown prune option #{inspect(k)}; valid options are #{inspect(@option_keys)}")

  defp invalid(message), do: {:error, {:invalid_option, message}}
end
