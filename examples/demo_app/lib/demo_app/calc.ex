defmodule DemoApp.Calc do
  @moduledoc "Integer arithmetic for the /calc routes."

  @doc "Parses a decimal integer parameter."
  def parse_int(nil), do: {:error, :not_an_integer}

  def parse_int(text) do
    case Integer.parse(text) do
      {n, ""} -> {:ok, n}
      _ -> {:error, :not_an_integer}
    end
  end

  @doc "Applies the operation named `op`."
  def apply_op("add", a, b), do: {:ok, a + b}
  def apply_op("sub", a, b), do: {:ok, a - b}
  def apply_op("mul", a, b), do: {:ok, a * b}

  def apply_op("div", a, b) do
    if b == 0 do
      {:error, :division_by_zero}
    else
      {:ok, div(a, b)}
    end
  end

  def apply_op("pow", a, b) do
    if b < 0 do
      {:error, :negative_exponent}
    else
      {:ok, Integer.pow(a, b)}
    end
  end

  def apply_op(_op, _a, _b), do: {:error, :unknown_op}
end
