defmodule LiveCov.Net do
  @moduledoc false
  # Facts about addresses that the agent's and the gateway's configuration both check.

  @doc """
  True for a loopback address: 127.0.0.0/8, `::1`, and IPv4-mapped loopback
  (`::ffff:127.x.y.z`).

      iex> LiveCov.Net.loopback?({127, 0, 0, 2})
      true
      iex> LiveCov.Net.loopback?({0, 0, 0, 0, 0, 0xFFFF, 0x7F00, 1})
      true
      iex> LiveCov.Net.loopback?({10, 0, 0, 1})
      false
  """
  @spec loopback?(:inet.ip_address()) :: boolean
  def loopback?({127, _, _, _}), do: true
  def loopback?({0, 0, 0, 0, 0, 0, 0, 1}), do: true
  def loopback?({0, 0, 0, 0, 0, 0xFFFF, a, _}) when is_integer(a), do: div(a, 256) == 127
  def loopback?(_), do: false
end
