using System.Text.Json.Serialization;
using MtlMoe.Engine;
using MtlMoe.Engine.Amp;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Training;

/// <summary>Mixed precision of a run's forward passes (master weights and optimizer state stay float32 either way).</summary>
[JsonConverter(typeof(ChoiceJsonConverter<AmpMode>))]
public enum AmpMode
{
    /// <summary>Everything in float32.</summary>
    [ChoiceName("off")] Off,
    /// <summary>
    /// bf16 autocast (<see cref="AutocastPolicy"/>): convolutions and matrix products in bf16, losses, softmax, batch-norm
    /// statistics and the MoE gating in float32. On the CPU the bf16 ops are the reference twins (correct, slower than float32).
    /// </summary>
    [ChoiceName("bf16")] Bf16,
}

/// <summary>Scopes for <see cref="AmpMode"/>.</summary>
public static class AmpModes
{
    /// <summary>An autocast scope for <paramref name="mode"/> (to dispose after the forward pass and the loss), or null when off.</summary>
    public static IDisposable? Enter(AmpMode mode) => mode == AmpMode.Bf16 ? Autocast.Enter(DType.BFloat16) : null;
}
