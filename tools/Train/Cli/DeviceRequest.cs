using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MtlMoe.Engine;
using MtlMoe.Model.IO;

namespace MtlMoe.Train.Cli;

/// <summary>What kind of device the user asked for.</summary>
[JsonConverter(typeof(ChoiceJsonConverter<DeviceKind>))]
public enum DeviceKind
{
    /// <summary>A GPU when one is usable, else the CPU.</summary>
    [ChoiceName("auto")] Auto,
    /// <summary>The CPU.</summary>
    [ChoiceName("cpu")] Cpu,
    /// <summary>A CUDA GPU (the first, or the one given by index).</summary>
    [ChoiceName("cuda")] Cuda,
}

/// <summary>
/// <c>--device auto|cpu|cuda|cuda:N</c>: a kind and, for CUDA, an optional index. Written in config.json exactly as
/// the user spelt it, so run folders from before this type resume unchanged.
/// </summary>
[JsonConverter(typeof(DeviceRequestJsonConverter))]
public readonly record struct DeviceRequest(DeviceKind Kind, int? Index = null)
{
    /// <summary>auto.</summary>
    public static DeviceRequest Auto => new(DeviceKind.Auto);

    /// <summary>The device a non-auto request names.</summary>
    public Device Device => Kind switch
    {
        DeviceKind.Cpu => Device.Cpu,
        DeviceKind.Cuda => Device.Cuda(Index ?? 0),
        _ => throw new InvalidOperationException("device auto names no device until it is resolved"),
    };

    /// <summary>auto, cpu, cuda or cuda:N.</summary>
    public override string ToString() => Index is int i ? $"{Kind.ToChoiceName()}:{i.ToString(CultureInfo.InvariantCulture)}" : Kind.ToChoiceName();

    /// <summary>Parses auto, cpu, cuda or cuda:N (N ≥ 0).</summary>
    public static bool TryParse(string? text, out DeviceRequest request)
    {
        request = Auto;
        if (text is null) return false;
        int colon = text.IndexOf(':');
        string kind = colon < 0 ? text : text[..colon];
        if (!ChoiceNames.TryParse<DeviceKind>(kind, out var k)) return false;
        if (colon < 0) { request = new(k); return true; }
        if (k != DeviceKind.Cuda || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int index)) return false;
        request = new(k, index);
        return true;
    }
}

/// <summary>JSON form of <see cref="DeviceRequest"/>: its string.</summary>
public sealed class DeviceRequestJsonConverter : JsonConverter<DeviceRequest>
{
    /// <inheritdoc />
    public override DeviceRequest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var s = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return DeviceRequest.TryParse(s, out var r) ? r : throw new JsonException($"expected auto, cpu, cuda or cuda:N, got '{s}'");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, DeviceRequest value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
