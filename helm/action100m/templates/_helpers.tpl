{{/* The four services, in pipeline order. */}}
{{- define "action100m.services" -}}
embedder segmenter captioner refiner
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
