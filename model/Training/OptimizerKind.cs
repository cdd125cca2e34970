using System.Text.Json.Serialization;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Training;

/// <summary>The optimizer a run trains with.</summary>
[JsonConverter(typeof(ChoiceJsonConverter<OptimizerKind>))]
public enum OptimizerKind
{
    /// <summary>SGD with momentum 0.9 (no Nesterov).</summary>
    [ChoiceName("sgd")] Sgd,
    /// <summary>AdamW (decoupled weight decay).</summary>
    [ChoiceName("adamw")] AdamW,
}
