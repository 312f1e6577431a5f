{{/* The chart's name, and the release's full name (63 characters at most: a DNS label). */}}
{{- define "sift.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sift.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sift.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sift.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sift.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "sift.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "sift.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sift.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sift.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The store is PostgreSQL when halts.store is a postgres:// URL. */}}
{{- define "sift.postgres" -}}
{{- $store := "" -}}
{{- with .Values.config.halts -}}{{- $store = default "" .store -}}{{- end -}}
{{- if or (hasPrefix "postgres://" $store) (hasPrefix "postgresql://" $store) -}}true{{- end -}}
{{- end -}}

{{/* Checks of the values that would otherwise fail only in the pod. */}}
{{- define "sift.check" -}}
{{- $metrics := "" -}}
{{- with .Values.config.metrics -}}{{- $metrics = default "" .listen -}}{{- end -}}
{{- if not (regexMatch (printf "^(0\\.0\\.0\\.0|\\[::\\])?:%v$" .Values.ports.metrics) $metrics) -}}
{{- fail (printf "config.metrics.listen is %q: set it to 0.0.0.0:%v (ports.metrics), the probes ask that port" $metrics .Values.ports.metrics) -}}
{{- end -}}
{{- with .Values.config.halts -}}
{{- if and .listen (not (regexMatch (printf "^(0\\.0\\.0\\.0|\\[::\\])?:%v$" $.Values.ports.hooks) .listen)) -}}
{{- fail (printf "config.halts.listen is %q: set it to 0.0.0.0:%v (ports.hooks), the Service and the NetworkPolicy use that port" .listen $.Values.ports.hooks) -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "sift.postgres" .)) -}}
{{- fail "replicaCount > 1 needs config.halts.store to be a postgres:// URL: replicas cannot share a SQLite file" -}}
{{- end -}}
{{- end -}}
