{{/* The five services, in pipeline order. */}}
{{- define "action100m.services" -}}
transcriber embedder segmenter captioner refiner
{{- end -}}

{{- define "action100m.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of everything the chart makes. */}}
{{- define "action100m.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: action100m
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one service: call with (dict "root" $ "name" "embedder"). */}}
{{- define "action100m.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "action100m.serviceName" -}}
{{- printf "%s-%s" (include "action100m.fullname" .root) .name -}}
{{- end -}}

{{- define "action100m.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "action100m.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "action100m.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .svc.image (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{- define "action100m.modelCacheClaim" -}}
{{- default (printf "%s-model-cache" (include "action100m.fullname" .)) .Values.modelCache.existingClaim -}}
{{- end -}}

{{/* The Hugging Face models one service loads, space-separated: call with (dict "root" $ "name" "captioner").
The refiner loads weights only with its vLLM backend. */}}
{{- define "action100m.serviceModels" -}}
{{- $svc := index .root.Values .name -}}
{{- $models := list -}}
{{- range $key := list "A100M_TRANSCRIBER_MODEL" "A100M_EMBEDDER_MODEL" "A100M_CAPTIONER_VIDEO_MODEL" "A100M_CAPTIONER_IMAGE_MODEL" "A100M_REFINER_MODEL" -}}
{{- $model := index $svc.env $key -}}
{{- if and $model (or (ne $.name "refiner") (eq (index $svc.env "A100M_REFINER_BACKEND" | default "vllm") "vllm")) -}}
{{- $models = append $models $model -}}
{{- end -}}
{{- end -}}
{{- join " " (uniq $models) -}}
{{- end -}}

{{/* Where one service's model cache lives: call with (dict "root" $ "name" "captioner").
  none        no weights to keep (segmenter, the openai-backend refiner) or modelCache.enabled=false: an emptyDir
  shared      one ReadWriteMany claim for every pod on every node, filled by the hook Job
  perReplica  ReadWriteOnce (the default): the service is a StatefulSet and each replica has its own
              claim, kept across restarts and scale-downs, filled by the pod's init container
A ReadWriteOnce volume attaches to one node, so no claim is ever shared by two pods; and the choice never
depends on the replica count, so scaling rolls nothing. */}}
{{- define "action100m.modelCacheMode" -}}
{{- $cache := .root.Values.modelCache -}}
{{- if or (not $cache.enabled) (not (include "action100m.serviceModels" .)) -}}
none
{{- else if has "ReadWriteMany" $cache.accessModes -}}
shared
{{- else if $cache.existingClaim -}}
{{- fail "modelCache.existingClaim is mounted by every GPU pod: it must be ReadWriteMany (say so in modelCache.accessModes), or leave it empty for a claim per replica" -}}
{{- else -}}
perReplica
{{- end -}}
{{- end -}}

{{/* The kind of one service's workload: a StatefulSet when each replica keeps its own model cache. */}}
{{- define "action100m.workloadKind" -}}
{{- ternary "StatefulSet" "Deployment" (eq (include "action100m.modelCacheMode" .) "perReplica") -}}
{{- end -}}

{{/* One service's ConfigMap data: call with (dict "root" $ "name" "refiner"). Its hash is the
pod template's checksum/config, so a settings change rolls that service and nothing else (and
scaling, which is not in it, rolls nothing). */}}
{{- define "action100m.configData" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .name -}}
A100M_PORT: {{ $root.Values.server.grpcPort | quote }}
A100M_METRICS_PORT: {{ $root.Values.server.metricsPort | quote }}
A100M_MAX_MESSAGE_MB: {{ $root.Values.server.maxMessageMb | quote }}
A100M_GRACE_SECONDS: {{ $root.Values.server.graceSeconds | quote }}
A100M_MAX_CONCURRENT: {{ $svc.concurrency.running | quote }}
A100M_MAX_QUEUED: {{ $svc.concurrency.queued | quote }}
A100M_ALLOWED_ROOTS: {{ join "," $root.Values.storage.allowedRoots | quote }}
A100M_READ_ONLY_ROOTS: {{ join "," ($root.Values.storage.readOnlyRoots | default list) | quote }}
A100M_S3_ENDPOINT: {{ $root.Values.storage.endpoint | quote }}
AWS_REGION: {{ $root.Values.storage.region | quote }}
HF_HOME: /models/huggingface
HF_HUB_OFFLINE: {{ ternary "1" "0" (or $root.Values.huggingFace.offline (and $root.Values.modelCache.enabled $root.Values.modelFetch.enabled)) | quote }}
{{- if eq .name "refiner" }}
{{- /* vLLM splits the model over the pod's GPUs, and takes this share of each (env may say otherwise) */}}
{{- if not (hasKey $svc.env "A100M_REFINER_TENSOR_PARALLEL_SIZE") }}
A100M_REFINER_TENSOR_PARALLEL_SIZE: {{ max 1 (int $svc.gpus) | quote }}
{{- end }}
{{- if not (hasKey $svc.env "A100M_REFINER_GPU_MEMORY_UTILIZATION") }}
A100M_REFINER_GPU_MEMORY_UTILIZATION: {{ $svc.gpuMemoryUtilization | quote }}
{{- end }}
{{- end }}
{{- range $key, $value := $svc.env }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end -}}
