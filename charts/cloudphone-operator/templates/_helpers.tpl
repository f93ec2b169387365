{{/* The operator's name, also its Service, Lease, Secret and webhook configuration names (passed to it as flags). */}}
{{- define "cloudphone.name" -}}{{ .Values.fullnameOverride | default "cloudphone-operator" | trunc 52 | trimSuffix "-" }}{{- end -}}

{{- define "cloudphone.labels" -}}
app.kubernetes.io/name: cloudphone-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: cloudphone
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "cloudphone.selectorLabels" -}}
app.kubernetes.io/name: cloudphone-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
