defmodule LiveCov.Formats do
  @moduledoc false
  # The built-in report formats by name, and the resolution of a format given by name or as
  # a module implementing the `LiveCov.Format` behaviour.

  @formats %{
    terminal: LiveCov.Format.Terminal,
    annotated: LiveCov.Format.Annotated,
    html: LiveCov.Format.HTML,
    lcov: LiveCov.Format.LCOV,
    cobertura: LiveCov.Format.Cobertura,
    coveralls: LiveCov.Format.Coveralls,
    json: LiveCov.Format.JSON
  }

  @doc "The built-in formats, `name => module`."
  @spec formats() :: %{atom() => module()}
  def formats, do: @formats

  @doc """
  Resolves a format given as a name (atom or string) or a module implementing
  `LiveCov.Format`.
  """
  @spec fetch(atom() | String.t() | module()) :: {:ok, module()} | {:error, {atom(), String.t()}}
  def fetch(name) when is_atom(name) and is_map_key(@formats, name),
    do: {:ok, Map.fetch!(@formats, name)}

  def fetch(name) when is_binary(name) do
    case Enum.find(@formats, fn {k, _} -> Atom.to_string(k) == String.downcase(name) end) do
      {_, mod} -> {:ok, mod}
      nil -> unknown(name)
    end
  end

  def fetch(mod) when is_atom(mod) do
    if Code.ensure_loaded?(mod) and function_exported?(mod, :render, 2) and
         function_exported?(mod, :name, 0) and function_exported?(mod, :filename, 0) do
      {:ok, mod}
    else
      unknown(mod)
    end
  end

  def fetch(other), do: unknown(other)

  defp unknown(name) do
    valid = @formats |> Map.keys() |> Enum.sort() |> Enum.map_join(", ", &inspect/1)

    {:error,
     {:unknown_format,
      "unknown report format #{inspect(name)}; valid formats are #{valid}, or a module implementing LiveCov.Format"}}
  end
end
