using System.Text.Json;
using System.Text.Json.Serialization;
using MtlMoe.Engine;

namespace MtlMoe.Model.IO;

/// <summary>Reads and writes a <see cref="Device"/> as "cpu" or "cuda:N" (what older run folders hold).</summary>
public sealed class DeviceJsonConverter : JsonConverter<Device>
{
    /// <inheritdoc />
    public override Device Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var s = reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new JsonException($"expected a device name (cpu, cuda:N), got {reader.TokenType}");
        try { return Device.Parse(s); }
        catch (ArgumentException e) { throw new JsonException(e.Message, e); }
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, Device value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
