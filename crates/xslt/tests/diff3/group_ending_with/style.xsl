<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Sum record ends a batch: group-ending-with. -->
  <xsl:template match="/meldungen">
    <xsl:for-each-group select="satz" group-ending-with="satz[@typ = 'S']">
      <batch first="{current-group()[1]/@behoerde}" size="{count(current-group())}" last="{current-group()[last()]}"/>
    </xsl:for-each-group>
  </xsl:template>
</xsl:stylesheet>
